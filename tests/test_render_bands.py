"""PNGs drawn in bands (chart_bands.py): the pixels of drawing the whole picture, one valid
zlib stream, and after one worker's update only its band and the header drawn again."""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from tornado_progress import render
from tornado_progress.chart_bands import PieceCache
from tornado_progress.model import Store
from tornado_progress.picture import Style
from tornado_progress.png_encoder import adler32_combine

NOW = 1_796_000_000.0
DESCS = ["lots of RFI", "", "中文の説明", "مرحبا بالعالم", "emoji 🙂🚀", "x" * 300]


def decoded(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the scanlines of a PNG (zlib checks the stream and its Adler-32)."""
    data, idat, width, height = png[8:], b"", 0, 0
    while data:
        (length,), kind = struct.unpack(">I", data[:4]), data[4:8]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", data[8:16])
        if kind == b"IDAT":
            idat += data[8:8 + length]
        data = data[12 + length:]
    return width, height, zlib.decompress(idat)


def job_chart(store: Store) -> render.ChartInput:
    job = store.get("j")
    return render.ChartInput(job.jobid, "A job", tuple(job.workers.values()), NOW, 300)


def filled(count: int) -> Store:
    store = Store(clock=lambda: NOW)
    for index in range(count):
        store.update("j", f"worker{index}", index % 23, 22, DESCS[index % len(DESCS)],
                     index % 17 != 5)
    return store


@pytest.mark.parametrize("count", [3, 40, 100, 300])
@pytest.mark.parametrize(("scale", "theme"), [(1, "light"), (2, "dark"), (1.5, "light")])
def test_bands_give_the_pixels_of_the_whole_picture(count: int, scale: float,
                                                    theme: str) -> None:
    chart = job_chart(filled(count))
    how = Style("png", theme)
    whole = render.render_chart(chart, 800, scale, how)
    banded = render.render_chart(chart, 800, scale, how, PieceCache(1 << 24))
    assert decoded(banded) == decoded(whole)


def test_after_one_update_only_its_band_is_drawn_again() -> None:
    store = filled(100)
    pieces = PieceCache(1 << 24)
    render.render_chart(job_chart(store), 800, 1, pieces=pieces)
    drawn = pieces.misses
    assert drawn > 10  # every band, once
    store.update("j", "worker42", 20, 22, "changed", True)
    again = render.render_chart(job_chart(store), 800, 1, pieces=pieces)
    assert pieces.misses - drawn <= 2  # its band (and a neighbour's, at a band's edge)
    assert decoded(again) == decoded(render.render_chart(job_chart(store), 800, 1))


def test_the_piece_cache_keeps_to_its_budget() -> None:
    store = filled(100)
    pieces = PieceCache(50_000)
    render.render_chart(job_chart(store), 800, 1, pieces=pieces)
    assert 0 < pieces.bytes_used <= 50_000


def test_adler32_of_a_joined_stream() -> None:
    for first, second in [(b"", b"x"), (b"hello", b" world"),
                          (os.urandom(100_000), os.urandom(70_000))]:
        assert adler32_combine(zlib.adler32(first), zlib.adler32(second),
                               len(second)) == zlib.adler32(first + second)
