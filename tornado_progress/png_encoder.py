"""A faster PNG writer for the renderer's pictures.

cairo's `write_to_png` compresses at libpng's default level, and spends most of a chart's render
time there: 90 % of 73 ms for a 100-worker chart. zlib at level 1 packs these mostly flat
pictures about 7 % larger in a third of the time. PNG wants RGBA bytes; cairo's
ARGB32 keeps B, G, R, A in memory on little-endian machines, so the renderer draws with red and
blue swapped (`surface_rgb`) and the bytes go out as they are. Elsewhere cairo's own writer is
used, with true colours.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
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


def encode(surface: Any) -> bytes:
    """PNG bytes of an ARGB32 surface, every pixel opaque, drawn with `surface_rgb` colours."""
    if not DIRECT:
        out = io.BytesIO()
        surface.write_to_png(out)
        return out.getvalue()
    surface.flush()
    width, height, stride = surface.get_width(), surface.get_height(), surface.get_stride()
    pixels = memoryview(surface.get_data())
    row = 4 * width
    packer = zlib.compressobj(1)
    parts = []
    for top in range(0, height * stride, stride):
        # Each scanline behind its filter byte 0 (none): filters would cost a pass in Python.
        parts.append(packer.compress(b"\x00"))
        parts.append(packer.compress(pixels[top:top + row]))
    parts.append(packer.flush())
    compressed = b"".join(parts)
    header = struct.pack(">IIBBBBB", width, height, 8, _RGBA, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", compressed)
            + _chunk(b"IEND", b""))
