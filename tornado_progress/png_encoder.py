"""A faster PNG writer for the renderer's pictures.

cairo's `write_to_png` compresses at libpng's default level, where a chart's render spends most
of its time; a deflate at its fastest level packs these mostly flat pictures a little larger in
a fraction of the time. PNG wants RGBA bytes; cairo's ARGB32 keeps B, G, R, A in memory on
little-endian machines, so the renderer draws with red and blue swapped (`surface_rgb`) and the
bytes go out as they are. Elsewhere cairo's own writer is used, with true colours.

A picture may be compressed in pieces (horizontal bands, chart_bands.py), each its own raw
deflate stream ended by a flush, joined into one zlib stream by `assemble`.
"""

from __future__ import annotations

import io
import struct
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from isal import isal_zlib

from . import palette

_local = threading.local()  # each thread's deflater
# Whether pixels in memory are R, G, B, A when drawn with red and blue swapped.
DIRECT = sys.byteorder == "little"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGBA = 6
# The deflater's memory (python-isal's memLevel, 1 to 9): every level from 2 up packs these
# pictures about as small, level 1 larger; a smaller state is less memory to go through.
MEM_LEVEL = 2


def surface_rgb(name: str, theme: str = "light") -> tuple[float, float, float]:
    """The palette colour `name` as the renderer must hand it to cairo."""
    red, green, blue = palette.rgb(name, theme)
    return (blue, green, red) if DIRECT else (red, green, blue)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", isal_zlib.crc32(kind + data) & 0xFFFFFFFF)


@dataclass(frozen=True)
class Piece:
    """A horizontal band of a picture, compressed on its own: a raw deflate stream ended by a
    full flush (byte-aligned, no final block, no reference to anything before it), so that
    pieces joined in order are one valid stream; with the Adler-32 and length of its
    uncompressed scanlines, to check it whole."""

    data: bytes
    adler: int
    length: int


_ADLER_BASE = 65521


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of A + B from those of A and B and the length of B (zlib's own formula,
    which Python's zlib does not expose)."""
    remainder = second_length % _ADLER_BASE
    low = ((first & 0xFFFF) + (second & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    high = (remainder * (first & 0xFFFF) + (first >> 16) + (second >> 16)
            + _ADLER_BASE - remainder) % _ADLER_BASE
    return low | high << 16


def row_views(pixels: memoryview, row: int, stride: int, top: int, bottom: int
              ) -> list[memoryview]:
    """Rows `top` to `bottom` of an ARGB32 surface's pixels, as views of them."""
    return [pixels[start:start + row] for start in range(top * stride, bottom * stride, stride)]


# Rows of a piece copied at a time into scanlines for the deflater: a band's worth at once was
# 400 KB of new memory each time, hundreds of page faults a picture; this much is reused from
# the allocator's free memory, and stays in the processor's cache while it is compressed.
CHUNK_ROWS = 32


def deflater() -> Any:
    """This thread's deflater, kept for every piece it compresses: ISA-L's state is tens of KB,
    and a new one for each band was that much to set up and touch anew a band. A piece ends
    with a full flush, which also empties the history, so that the next piece refers to
    nothing before it: its bytes are those a new deflater would give."""
    found = getattr(_local, "deflater", None)
    if found is None:
        found = _local.deflater = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15, MEM_LEVEL)
    return found


def compress(rows: Sequence[memoryview]) -> Piece:
    """Rows of pixels as scanlines, each behind its filter byte 0 (none: filters would cost a
    pass in Python), compressed on their own by ISA-L's deflate (python-isal): at its fastest
    level it packs these pictures as small as zlib's fastest, several times sooner, and its
    Adler-32 is faster too; it lets go of the GIL meanwhile."""
    packer = deflater()
    parts, adler, length = [], 1, 0
    try:
        for first in range(0, len(rows), CHUNK_ROWS):
            chunk = b"\x00".join([b"", *rows[first:first + CHUNK_ROWS]])
            parts.append(packer.compress(chunk))
            adler = isal_zlib.adler32(chunk, adler)
            length += len(chunk)
        parts.append(packer.flush(isal_zlib.Z_FULL_FLUSH))
    except BaseException:
        _local.deflater = None  # it holds part of a piece: the next gets a new one
        raise
    return Piece(b"".join(parts), adler, length)


# A zlib stream's header (deflate, 32 KiB window, fastest level) and its last, empty block.
_ZLIB_HEADER = b"\x78\x01"
_FINAL_BLOCK = b"\x03\x00"


def assemble(width: int, height: int, pieces: list[Piece]) -> bytes:
    """A PNG of `width` x `height` from its bands, top to bottom, the pieces copied once."""
    adler, length, crc = 1, 2, isal_zlib.crc32(_ZLIB_HEADER, isal_zlib.crc32(b"IDAT"))
    for piece in pieces:
        adler = adler32_combine(adler, piece.adler, piece.length)
        length += len(piece.data)
        crc = isal_zlib.crc32(piece.data, crc)
    trailer = _FINAL_BLOCK + struct.pack(">I", adler)
    crc = isal_zlib.crc32(trailer, crc)
    header = struct.pack(">IIBBBBB", width, height, 8, _RGBA, 0, 0, 0)
    return b"".join([_SIGNATURE, _chunk(b"IHDR", header),
                     struct.pack(">I", length + len(trailer)), b"IDAT", _ZLIB_HEADER,
                     *(piece.data for piece in pieces), trailer, struct.pack(">I", crc),
                     _chunk(b"IEND", b"")])


def encode(surface: Any) -> bytes:
    """PNG bytes of an ARGB32 surface, every pixel opaque, drawn with `surface_rgb` colours,
    compressed as one piece."""
    if not DIRECT:
        out = io.BytesIO()
        surface.write_to_png(out)
        return out.getvalue()
    surface.flush()
    width, height = surface.get_width(), surface.get_height()
    rows = row_views(memoryview(surface.get_data()), 4 * width, surface.get_stride(), 0, height)
    return assemble(width, height, [compress(rows)])
