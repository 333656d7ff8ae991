"""PNGs drawn in bands (chart_bands.py): the pixels of drawing the whole picture, one valid
zlib stream, and after one worker's update only its band and the header drawn again."""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import pytest

from tornado_progress import chart_bands, render
from tornado_progress.chart_bands import PieceCache
from tornado_progress.chart_draw import draw_header
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


def test_after_one_update_only_its_band_and_the_overall_bar_are_drawn_again() -> None:
    store = filled(100)
    pieces = PieceCache(1 << 24)
    render.render_chart(job_chart(store), 800, 1, pieces=pieces)
    drawn = pieces.misses
    assert drawn > 10  # every band, once
    store.update("j", "worker42", 20, 22, "changed", True)
    again = render.render_chart(job_chart(store), 800, 1, pieces=pieces)
    # Its band (and a neighbour's, at a band's edge) and the header's overall bar; the title's
    # percent and the legend's counts and time are as before.
    assert pieces.misses - drawn <= 3
    assert decoded(again) == decoded(render.render_chart(job_chart(store), 800, 1))


def header_zones_drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The header's zones drawn from now on, in order (a list that fills as they are)."""
    drawn: list[str] = []

    def spy(*args: Any) -> float:
        drawn.extend(args[-1])
        return draw_header(*args)
    monkeypatch.setattr(chart_bands, "draw_header", spy)
    return drawn


def test_a_changed_string_leaves_the_header_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = job_chart(filled(100))
    pieces = PieceCache(1 << 24)
    render.render_chart(chart, 800, 1, pieces=pieces)
    workers = list(chart.workers)
    workers[42] = workers[42]._replace(desc="changed")  # in its place: the same overall sum
    changed = render.ChartInput(chart.jobid, chart.desc, tuple(workers), NOW, 300)
    zones = header_zones_drawn(monkeypatch)
    again = render.render_chart(changed, 800, 1, pieces=pieces)
    assert zones == []
    assert decoded(again) == decoded(render.render_chart(changed, 800, 1))


def test_a_new_second_redraws_the_legend_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = job_chart(filled(100))
    pieces = PieceCache(1 << 24)
    render.render_chart(chart, 800, 1, pieces=pieces)
    drawn = pieces.misses
    later = render.ChartInput(chart.jobid, chart.desc, chart.workers, NOW + 1, 300)
    zones = header_zones_drawn(monkeypatch)
    again = render.render_chart(later, 800, 1, pieces=pieces)
    assert zones == ["legend"]
    assert pieces.misses - drawn == 1
    assert decoded(again) == decoded(render.render_chart(later, 800, 1))


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
