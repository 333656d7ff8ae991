"""The renderer's PNG writer: valid files with the colours drawn, on either byte order."""

from __future__ import annotations

import io
import zlib
from typing import Any

import cairo
import pytest
from isal import isal_zlib

from tornado_progress import palette, png_encoder


def drawn(width: int, height: int) -> cairo.ImageSurface:
    """The left half in the palette's failed red, the right half in ok green."""
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, width, height)
    ctx = cairo.Context(surface)
    for name, left in (("failed", 0), ("ok", width // 2)):
        ctx.set_source_rgb(*png_encoder.surface_rgb(name))
        ctx.rectangle(left, 0, width - width // 2 if left else width // 2, height)
        ctx.fill()
    return surface


def pixel(surface: cairo.ImageSurface, x: int, y: int) -> tuple[int, int, int]:
    """(red, green, blue) of a surface cairo decoded (native ARGB32)."""
    data = surface.get_data()
    value = int.from_bytes(data[y * surface.get_stride() + 4 * x:][:4], "little")
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


@pytest.mark.parametrize("direct", [True, False])
def test_written_png_decodes_to_the_palette_colours(monkeypatch: pytest.MonkeyPatch,
                                                    direct: bool) -> None:
    monkeypatch.setattr(png_encoder, "DIRECT", direct)
    data = png_encoder.encode(drawn(7, 3))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = cairo.ImageSurface.create_from_png(io.BytesIO(data))
    assert (decoded.get_width(), decoded.get_height()) == (7, 3)
    assert pixel(decoded, 0, 0) == palette.COLOURS["failed"]
    assert pixel(decoded, 6, 2) == palette.COLOURS["ok"]


def test_a_picture_of_several_chunks_decodes_whole() -> None:
    """Rows in the failed red and the ok green by turns, across several chunks of scanlines."""
    height = 2 * png_encoder.CHUNK_ROWS + 3
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, 5, height)
    ctx = cairo.Context(surface)
    for y in range(height):
        ctx.set_source_rgb(*png_encoder.surface_rgb("failed" if y % 3 else "ok"))
        ctx.rectangle(0, y, 5, 1)
        ctx.fill()
    data = png_encoder.encode(surface)
    decoded = cairo.ImageSurface.create_from_png(io.BytesIO(data))
    assert decoded.get_height() == height
    for y in range(height):
        assert pixel(decoded, 4, y) == palette.COLOURS["failed" if y % 3 else "ok"], y


@pytest.mark.parametrize("count", [0, 1, 31, 32, 33, 100])
def test_a_piece_is_a_raw_deflate_stream_ended_by_a_flush_with_its_adler32(count: int) -> None:
    """Rows of a piece are copied into scanlines CHUNK_ROWS at a time: any number of them comes
    out whole, with the Adler-32 and length of all of them."""
    pixels = memoryview(bytes(range(256)) * 40)
    rows = png_encoder.row_views(pixels, 96, 100, 0, count)
    lines = b"".join(b"\x00" + bytes(row) for row in rows)
    piece = png_encoder.compress(rows)
    assert piece.data.endswith(b"\x00\x00\xff\xff")  # a flush: byte-aligned, joinable
    assert zlib.decompressobj(-15).decompress(piece.data) == lines
    assert (piece.adler, piece.length) == (zlib.adler32(lines), len(lines))


def test_the_small_deflater_packs_a_chart_as_small_as_the_default() -> None:
    """MEM_LEVEL keeps the compressor's memory small without making pictures larger."""
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, 400, png_encoder.CHUNK_ROWS)
    ctx = cairo.Context(surface)
    ctx.set_source_rgb(1, 1, 1)
    ctx.paint()
    for row in range(6):  # rounded bars of several lengths with text: a chart's kind of rows
        ctx.set_source_rgb(0.1, 0.5, 0.2)
        ctx.arc(40 + 50 * row, 6 + 10 * row, 4, 0, 6.3)
        ctx.rectangle(10, 2 + 10 * row, 30 + 50 * row, 8)
        ctx.fill()
        ctx.set_source_rgb(0, 0, 0)
        ctx.move_to(20, 9 + 10 * row)
        ctx.show_text(f"worker {row}: calibrating band {row}")
    rows = png_encoder.row_views(memoryview(surface.get_data()), 4 * 400, surface.get_stride(),
                                 0, png_encoder.CHUNK_ROWS)
    lines = b"".join(b"\x00" + bytes(row) for row in rows)
    default = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)
    assert len(png_encoder.compress(rows).data) <= 1.01 * len(
        default.compress(lines) + default.flush(isal_zlib.Z_SYNC_FLUSH))


def test_pieces_of_one_deflater_refer_to_nothing_before_them() -> None:
    """The thread's deflater is kept from piece to piece: each piece alone decodes to its rows,
    in the very bytes a new deflater would give, though it repeats the piece before it."""
    pixels = memoryview(bytes(i * 7 % 256 for i in range(256)) * 200)
    for shift in range(4):
        rows = png_encoder.row_views(pixels, 256, 256 + shift, 0, 150)
        piece = png_encoder.compress(rows)
        assert zlib.decompressobj(-15).decompress(piece.data) == b"".join(
            b"\x00" + bytes(row) for row in rows)
        kept = png_encoder.deflater()
        png_encoder._local.deflater = None
        assert png_encoder.compress(rows) == piece  # as a new deflater gives it
        assert png_encoder.deflater() is not kept


def test_a_piece_that_fails_halfway_leaves_nothing_in_the_next() -> None:
    pixels = memoryview(bytes(range(256)) * 40)
    rows = png_encoder.row_views(pixels, 96, 100, 0, 70)
    broken: list[Any] = [*rows[:png_encoder.CHUNK_ROWS], None]
    with pytest.raises(TypeError):  # its first rows are in the deflater when the next fail
        png_encoder.compress(broken)
    piece = png_encoder.compress(rows[:3])
    assert zlib.decompressobj(-15).decompress(piece.data) == b"".join(
        b"\x00" + bytes(row) for row in rows[:3])
