"""Bars laid from stamps (bar_stamps.py): the pixels of the bars' paths (within one level of a
channel at scale 1, a few on curved edges at other scales), used only where rows
are whole device pixels apart on a raster picture, short fills and ends near the track's end by
their paths, stamps bounded per thread."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import cairo
import pytest

from tests.render_support import chart, worker
from tornado_progress import bar_stamps, chart_draw, render
from tornado_progress.picture import Style

WHITE = (1.0, 1.0, 1.0)


def pixels(png: bytes) -> bytes:
    data, idat = png[8:], b""
    while data:
        length = struct.unpack(">I", data[:4])[0]
        if data[4:8] == b"IDAT":
            idat += data[8:8 + length]
        data = data[12 + length:]
    return zlib.decompress(idat)


def job(count: int) -> render.ChartInput:
    """Fills from none through too short for stamps to whole and past it, failed ones too."""
    fractions = [0, 0.001, 0.008, 0.016, 0.02, 0.5, 0.999, 1, 1.5]
    return chart(*[worker(f"w{k}", fractions[k % len(fractions)] * 100 + k % 3 / 7, 100,
                          f"pass {k}", ok=k % 5 != 2) for k in range(count)])


@pytest.fixture
def paths_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(chart_draw, "lay_bars",
                        lambda ctx, x, w, h, radius, background, rows: list(range(len(rows))))
    yield


def count_laid(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    laid = [0]
    real = bar_stamps.lay_bars

    def counting(*args: object) -> list[int]:
        by_path = real(*args)  # type: ignore[arg-type]
        laid[0] += len(args[-1]) - len(by_path)  # type: ignore[arg-type]
        return by_path
    monkeypatch.setattr(chart_draw, "lay_bars", counting)
    return laid


@pytest.mark.parametrize(("count", "scale", "most"), [(12, 1, 1), (100, 1, 1), (100, 2, 8),
                                                      (40, 1.5, 8)])
def test_stamped_bars_are_the_paths_pixels(count: int, scale: float, most: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    laid = count_laid(monkeypatch)
    stamped = pixels(render.render_chart(job(count), 800, scale))
    assert laid[0] > count // 2
    monkeypatch.setattr(chart_draw, "lay_bars",
                        lambda ctx, x, w, h, radius, background, rows: list(range(len(rows))))
    by_paths = pixels(render.render_chart(job(count), 800, scale))
    assert max((abs(a - b) for a, b in zip(stamped, by_paths, strict=True)), default=0) <= most


def test_rows_not_whole_pixels_apart_keep_their_paths() -> None:
    ctx = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 400, 100))
    ctx.scale(1.25, 1.25)
    grey, blue = (0.9, 0.9, 0.9), (0.1, 0.3, 0.9)
    rows = [(10.5 + 14 * k, 0.5, grey, blue) for k in range(3)]  # 17.5 device px apart
    assert bar_stamps.lay_bars(ctx, 10.3, 250, 11, 5, WHITE, rows) == [0, 1, 2]
    ctx.identity_matrix()
    ctx.rotate(0.1)
    assert bar_stamps.lay_bars(ctx, 10.3, 250, 11, 5, WHITE, rows[:1]) == [0]


def test_svg_bars_are_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    laid = count_laid(monkeypatch)
    svg = render.render_chart(job(20), 800, 1, Style("svg"))
    assert laid[0] == 0 and b"<image" not in svg


def test_fills_too_short_for_both_ends_are_left_to_the_path() -> None:
    ctx = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 400, 100))
    grey, blue = (0.9, 0.9, 0.9), (0.1, 0.3, 0.9)
    rows = [(10.5 + 20 * k, fraction, grey, blue)
            for k, fraction in enumerate([0, 0.01, 0.05, 0.5])]
    assert bar_stamps.lay_bars(ctx, 10.3, 300, 12, 5, WHITE, rows) == [1]


def test_stamps_are_bounded_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bar_stamps, "STAMPS_KEPT", 3)
    ctx = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 400, 100))
    for shade in range(10):
        colour = (shade / 10, 0.5, 0.5)
        rows = [(10.5 + 20 * k, 0.5, colour, colour) for k in range(3)]
        assert bar_stamps.lay_bars(ctx, 10.3, 300, 12, 5, WHITE, rows) == []
    assert len(bar_stamps.stamps()) == 3


def test_a_stamp_is_one_row_pitch_tall_and_none_is_past_its_budget() -> None:
    grey, blue = (0.9, 0.9, 0.9), (0.1, 0.3, 0.9)
    rows = [(10.5 + 14 * k, 0.5, grey, blue) for k in range(6)]
    wide = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1))
    wide.scale(2, 2)  # 28 device px a row, 5,000 px wide: 560 KB a stamped row
    bar_stamps.stamps().clear()
    assert bar_stamps.lay_bars(wide, 10.3, 2500, 11, 5, WHITE, rows) == []
    assert [surface.get_height() for surface in bar_stamps.stamps().values()] == [28, 28]
    wider = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1))
    wider.scale(4, 4)  # 16,000 px wide at 56 px a row: past STAMP_BYTES
    assert bar_stamps.lay_bars(wider, 10.3, 3990, 11, 5, WHITE, rows) == list(range(6))


def test_a_window_too_large_to_keep_is_not_kept() -> None:
    from tornado_progress import chart_bands
    chart_bands.window(800, 150)
    kept = chart_bands._local.window
    assert kept is not None and kept.surface.get_width() == 800
    assert chart_bands.window(800, 140) is kept  # a band a little shorter: the same window
    surface, views = chart_bands.window(16_000, 400)
    assert surface.get_width() == 16_000 and len(views) == 400
    assert chart_bands._local.window is None  # 25 MB: made for this picture alone


def test_end_stamps_are_bounded_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bar_stamps, "ENDS_KEPT", 5)
    ctx = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 400, 100))
    grey, blue = (0.9, 0.9, 0.9), (0.1, 0.3, 0.9)
    for step in range(20):  # every fill ends somewhere else: an end stamp each
        rows = [(10.5 + 20 * k, 0.2 + step / 50 + k / 500, grey, blue) for k in range(3)]
        assert bar_stamps.lay_bars(ctx, 10.3, 300, 12, 5, WHITE, rows) == []
    assert len(bar_stamps.end_stamps()) == 5
