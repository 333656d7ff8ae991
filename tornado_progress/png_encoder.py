"""A faster PNG writer for the renderer's pictures.

cairo's `write_to_png` compresses at libpng's default level, where a chart's render spends most
of its time; zlib at its fastest level packs these mostly flat pictures a little larger in a
fraction of the time. PNG wants RGBA bytes; cairo's ARGB32 keeps B, G, R, A in memory on
little-endian machines, so the renderer draws with red and blue swapped (`surface_rgb`) and the
bytes go out as they are. Elsewhere cairo's own writer is used, with true colours.

A picture may be compressed in pieces (horizontal bands, chart_bands.py), each its own raw
deflate stream ended by a sync flush, joined into one zlib stream by `assemble`.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import palette

# Whether pixels in memory are R, G, B, A when drawn with red and blue swapped.
DIRECT = sys.byteorder == "little"
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGBA = 6


def surface_rgb(name: str, theme: str = "light") -> tuple[float, float, float]:
    """The palette colour `name` as the renderer must hand it to cairo."""
    red, green, blue = palette.rgb(name, theme)
    return (blue, green, red) if DIRECT else (red, green, blue)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@dataclass(frozen=True)
class Piece:
    """A horizontal band of a picture, compressed on its own: a raw deflate stream ended by a
    sync flush (byte-aligned, no final block), so that pieces joined in order are one valid
    stream; with the Adler-32 and length of its uncompressed scanlines, to check it whole."""

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


def scanlines(pixels: memoryview, row: int, stride: int, top: int, bottom: int) -> bytes:
    """Rows `top` to `bottom` of an ARGB32 surface's pixels, each behind its filter byte 0
    (none: filters would cost a pass in Python), copied once."""
    rows = [pixels[start:start + row] for start in range(top * stride, bottom * stride, stride)]
    return b"\x00".join([b"", *rows])


def compress(lines: bytes) -> Piece:
    """Scanlines compressed on their own. zlib lets go of the GIL meanwhile, so that pieces
    compress in other threads while the next is drawn."""
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = packer.compress(lines) + packer.flush(zlib.Z_SYNC_FLUSH)
    return Piece(data, zlib.adler32(lines), len(lines))


def surface_lines(surface: Any, top: int = 0, bottom: int | None = None) -> bytes:
    """The scanlines of device rows `top` to `bottom` (the last) of an ARGB32 surface."""
    surface.flush()
    end = surface.get_height() if bottom is None else bottom
    return scanlines(memoryview(surface.get_data()), 4 * surface.get_width(),
                     surface.get_stride(), top, end)


def encode_piece(surface: Any) -> Piece:
    """A band of an ARGB32 surface drawn with `surface_rgb` colours, compressed on its own."""
    return compress(surface_lines(surface))


def packers() -> ThreadPoolExecutor:
    """The threads that compress pieces, shared by every render, started when first needed."""
    global _packers
    with _packers_lock:
        if _packers is None:
            _packers = ThreadPoolExecutor(PACK_THREADS, thread_name_prefix="deflate")
        return _packers


def _compress_timed(lines: bytes) -> tuple[Piece, float]:
    began = time.thread_time()
    piece = compress(lines)
    return piece, time.thread_time() - began


class Compressing:
    """Scanlines being compressed in `packers()`, while the thread that handed them over goes
    on drawing. `piece` compresses them in the asking thread if no other has begun, rather
    than wait; with the CPU seconds another thread spent on them."""

    def __init__(self, lines: bytes) -> None:
        self.lines = lines
        self.future = packers().submit(_compress_timed, lines)

    def piece(self) -> tuple[Piece, float]:
        if self.future.cancel():
            return compress(self.lines), 0.0
        return self.future.result()


class Helpers:
    """Whether handing pieces to other threads has been making pictures faster. It does when
    another core is free; on a machine whose cores are busy it only costs (the threads take
    turns on one core, each losing the other's cache). Measured on the pictures handed over:
    the CPU seconds of the drawing thread and of the compressing threads for that picture
    over its wall-clock seconds; when that stays low, pieces are compressed where they are
    drawn, and handed over again every PROBE_EVERY pictures to measure anew."""

    def __init__(self) -> None:
        self.parallelism = 2.0  # hopeful until measured
        self.declined = 0  # pictures not handed over since the last measure
        self._lock = threading.Lock()

    def wanted(self) -> bool:
        with self._lock:
            if self.parallelism >= PARALLEL_WORTH:
                return True
            self.declined += 1
            if self.declined < PROBE_EVERY:
                return False
            self.declined = 0
            return True

    def measured(self, cpu: float, wall: float) -> None:
        with self._lock:
            self.parallelism = (self.parallelism + cpu / max(wall, 1e-9)) / 2


HELPERS = Helpers()


class Pack:
    """The pieces of one picture, compressed in the order added: in other threads while this
    one draws on, when there are at least PACK_ELSEWHERE of them and HELPERS finds that it
    pays, else here and now."""

    def __init__(self, expected: int) -> None:
        self.elsewhere = expected >= PACK_ELSEWHERE and HELPERS.wanted()
        self._began = time.perf_counter()
        self._cpu_began = time.thread_time()
        self._slots: list[Piece | Compressing] = []

    def add(self, lines: bytes) -> int:
        """Hands over scanlines; the index of their piece in `pieces()`."""
        self._slots.append(Compressing(lines) if self.elsewhere else compress(lines))
        return len(self._slots) - 1

    def pieces(self) -> list[Piece]:
        """Every piece; those handed over taken from the last (other threads take from the
        first)."""
        helped = 0.0
        for index in reversed(range(len(self._slots))):
            slot = self._slots[index]
            if isinstance(slot, Compressing):
                self._slots[index], spent = slot.piece()
                helped += spent
        if self.elsewhere:
            HELPERS.measured(time.thread_time() - self._cpu_began + helped,
                             time.perf_counter() - self._began)
        return [slot for slot in self._slots if isinstance(slot, Piece)]


# Pieces are compressed in other threads while the render's thread draws on (zlib lets go of
# the GIL), as many as there are cores, up to a few; but fewer pieces than PACK_ELSEWHERE are
# compressed in the drawing thread, which costs less than handing them over.
PACK_THREADS = max(1, min(4, os.cpu_count() or 1))
PACK_ELSEWHERE = 3
# Handing pieces over goes on while pictures handed over kept more than this many cores busy
# on average (see Helpers), and is tried again after this many pictures without.
PARALLEL_WORTH = 1.25
PROBE_EVERY = 8
_packers: ThreadPoolExecutor | None = None
_packers_lock = threading.Lock()
# Rows of a piece of a picture encoded whole: pieces small enough to share among threads,
# large enough that their overhead (a compressor each, a flush) stays small.
ENCODE_ROWS = 64

# A zlib stream's header (deflate, 32 KiB window, fastest level) and its last, empty block.
_ZLIB_HEADER = b"\x78\x01"
_FINAL_BLOCK = b"\x03\x00"


def assemble(width: int, height: int, pieces: list[Piece]) -> bytes:
    """A PNG of `width` x `height` from its bands, top to bottom, the pieces copied once."""
    adler, length, crc = 1, 2, zlib.crc32(_ZLIB_HEADER, zlib.crc32(b"IDAT"))
    for piece in pieces:
        adler = adler32_combine(adler, piece.adler, piece.length)
        length += len(piece.data)
        crc = zlib.crc32(piece.data, crc)
    trailer = _FINAL_BLOCK + struct.pack(">I", adler)
    crc = zlib.crc32(trailer, crc)
    header = struct.pack(">IIBBBBB", width, height, 8, _RGBA, 0, 0, 0)
    return b"".join([_SIGNATURE, _chunk(b"IHDR", header),
                     struct.pack(">I", length + len(trailer)), b"IDAT", _ZLIB_HEADER,
                     *(piece.data for piece in pieces), trailer, struct.pack(">I", crc),
                     _chunk(b"IEND", b"")])


def encode(surface: Any) -> bytes:
    """PNG bytes of an ARGB32 surface, every pixel opaque, drawn with `surface_rgb` colours,
    compressed in pieces of ENCODE_ROWS rows in several threads."""
    if not DIRECT:
        out = io.BytesIO()
        surface.write_to_png(out)
        return out.getvalue()
    height = surface.get_height()
    tops = range(0, max(height, 1), ENCODE_ROWS)
    pack = Pack(len(tops))
    for top in tops:
        pack.add(surface_lines(surface, top, min(height, top + ENCODE_ROWS)))
    return assemble(surface.get_width(), height, pack.pieces())
