"""The PNG chart: pixel-level property checks on pictures read back with pycairo (colours, fill
lengths, text inside bars with either text engine, sizes, the height bound, hostile strings).
The `render` endpoint's rules are in test_render_endpoint.py."""

from __future__ import annotations

import cairo
import hypothesis
import pytest
from hypothesis import strategies as st

from tests.render_support import (
    HOSTILE,
    NOW,
    STALE_AFTER,
    body,
    chart,
    dark,
    decode,
    fill_box,
    layout,
    light,
    near,
    rgb,
    track_box,
    worker,
)
from tornado_progress import (
    chart_draw,
    chart_layout,
    palette,
    render,
    render_text,
    text_draw,
    views,
)
from tornado_progress.model import Job
from tornado_progress.printable import ELLIPSIS, printable

# Pure rendering ----------------------------------------------------------------------------


@pytest.fixture(params=["pango", "toy"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each text engine in turn: Pango, and cairo's toy text as where PyGObject is missing."""
    if request.param == "toy":
        monkeypatch.setattr(text_draw, "PANGO", None)
    elif text_draw.PANGO is None:
        pytest.skip("Pango is the pango extra (make setup installs it)")
    return str(request.param)



def test_bar_colours_follow_the_worker_state() -> None:
    workers = [worker("w1", 5, 10), worker("w2", 5, 10, ok=False), worker("w3", 10, 10),
               worker("w4", 5, 10, age=STALE_AFTER + 1)]
    picture = decode(render.render_chart(chart(*workers), 800, 1))
    lay = layout(chart(*workers))
    expected = ["ok", "failed", "done", "stale"]
    for index, name in enumerate(expected):
        box = fill_box(lay, index, workers[index].fraction)
        assert picture.count(rgb(name), box) == (box[2] - box[0]) * (box[3] - box[1]), name
    # A failed bar's track is tinted too, so a failed worker at 0 % still reads as red.
    assert picture.count(rgb("failed-track"), track_box(lay, 1, 0.5)) > 0
    assert picture.count(rgb("failed-track"), track_box(lay, 0, 0.5)) == 0


def test_rows_come_in_natural_order() -> None:
    workers = [worker("w10", 1, 2), worker("w2", 1, 2, ok=False), worker("w1", 2, 2)]
    picture = decode(render.render_chart(chart(*workers), 800, 1))
    lay = layout(chart(*workers))
    for index, name in enumerate(["done", "failed", "ok"]):  # w1, w2, w10
        assert picture.at(lay.bar_x + 10, lay.bar_top(index) + lay.bar_h / 2) == rgb(name)


@pytest.mark.parametrize("scale", [1, 2])
def test_fill_length_is_proportional_to_progress(scale: int) -> None:
    fractions = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9]
    workers = [worker(f"w{i}", fraction * 40, 40) for i, fraction in enumerate(fractions)]
    workers += [worker("w8", 80, 40), worker("w9", 0, 0)]  # beyond total: full; 0 of 0: empty
    fractions += [1.0, 0.0]
    picture = decode(render.render_chart(chart(*workers), 800, scale))
    lay = layout(chart(*workers), 800, scale)
    for index, fraction in enumerate(fractions):
        colour = rgb("done" if fraction >= 1 else "ok")
        right = picture.rightmost(colour, (lay.bar_top(index) + lay.bar_h / 2) * scale)
        if fraction == 0:
            assert right is None
        else:
            assert right is not None
            assert abs((right + 1) / scale - lay.bar_x - fraction * lay.bar_w) <= 1.5


def test_overall_bar_shows_the_mean_progress() -> None:
    workers = [worker("w1", 1, 4), worker("w2", 3, 4)]
    picture = decode(render.render_chart(chart(*workers), 600, 1))
    y = chart_layout.MARGIN + chart_layout.TITLE_SIZE + 8 + 4  # the middle of the 8 px overall bar
    right = picture.rightmost(rgb("ok"), y)
    assert right is not None
    assert abs(right + 1 - chart_layout.MARGIN - 0.5 * (600 - 2 * chart_layout.MARGIN)) <= 1.5


def test_string_is_drawn_inside_the_fill_in_a_light_colour(engine: str) -> None:
    with_text = [worker("w1", 8, 10, "lots of RFI")]
    without = [worker("w1", 8, 10)]
    lay = layout(chart(*with_text))
    box = fill_box(lay, 0, 0.8)
    assert decode(render.render_chart(chart(*with_text), 800, 1)).count(light, box) > 20
    assert decode(render.render_chart(chart(*without), 800, 1)).count(light, box) == 0


def test_string_goes_after_a_short_fill_in_a_dark_colour(engine: str) -> None:
    with_text = [worker("w1", 1, 10, "lots of RFI")]
    lay = layout(chart(*with_text))
    box = track_box(lay, 0, 0.1)
    assert decode(render.render_chart(chart(*with_text), 800, 1)).count(dark, box) > 20
    plain = decode(render.render_chart(chart(worker("w1", 1, 10)), 800, 1))
    assert plain.count(dark, box) == 0


def test_each_fill_takes_the_text_colour_that_reads_on_it(engine: str) -> None:
    stale = [worker("w1", 9, 10, "quiet worker", age=STALE_AFTER + 1)]
    box = fill_box(layout(chart(*stale)), 0, 0.9)
    picture = decode(render.render_chart(chart(*stale), 800, 1))
    wanted = light if palette.text_on("stale") == "text-on-fill" else dark
    assert picture.count(wanted, box) > 20


def test_long_string_is_cut_with_an_ellipsis_inside_its_bar(engine: str) -> None:
    ctx = cairo.Context(cairo.ImageSurface(cairo.FORMAT_RGB24, 1, 1))
    render_text.set_font(ctx, 12)
    cut = render_text.fit(ctx, "a long string " * 50, 150)
    assert cut.endswith(ELLIPSIS) and 0 < render_text.text_width(ctx, cut) <= 150
    assert render_text.fit(ctx, "short", 150) == "short"
    pen = render.scratch_pen()
    assert 0 < pen.show("a long string " * 50, 0, 20, 150) <= 150 < pen.width("a long string " * 3)
    workers = [worker("w1", 5, 10, "x" * 1024), worker("w2", 5, 10)]
    lay = layout(chart(*workers))
    picture = decode(render.render_chart(chart(*workers), 800, 1))
    gap = (int(lay.bar_x + lay.bar_w) + 1, int(lay.bar_top(0)),
           int(lay.bar_x + lay.bar_w + chart_layout.GAP) - 1, int(lay.bar_top(0) + lay.bar_h))
    assert picture.count(rgb("background"), gap) == (gap[2] - gap[0]) * (gap[3] - gap[1])


@pytest.mark.parametrize("width,scale", [(200, 1), (800, 1), (333, 2.5), (4000, 1), (300, 4)])
def test_picture_size_follows_width_and_scale(width: int, scale: float) -> None:
    workers = [worker(f"w{i}", i, 10, "some text") for i in range(12)]
    picture = decode(render.render_chart(chart(*workers), width, scale))
    lay = layout(chart(*workers), width, scale)
    assert picture.width == round(width * scale)
    assert picture.height == round(lay.height * scale)
    assert lay.bar_w > 0.4 * (width - 2 * chart_layout.MARGIN)


def test_height_grows_with_workers_then_rows_get_thinner() -> None:
    heights = [layout(chart(*[worker(f"w{i}", 1, 2) for i in range(count)])).height
               for count in (1, 10, 100, 1000, 100_000)]
    assert heights[0] < heights[1] < heights[2] <= chart_layout.MAX_HEIGHT
    assert heights[3] == heights[4] == chart_layout.MAX_HEIGHT
    many = layout(chart(*[worker(f"w{i}", 1, 2) for i in range(1000)]))
    assert not many.text and many.row_h < chart_layout.TEXT_MIN_ROW
    assert layout(chart(worker("w1", 1, 2))).text


@pytest.mark.parametrize("scale", [1, 2])
def test_failed_and_stale_workers_stay_visible_among_10000(scale: int) -> None:
    workers = [worker(f"w{i}", i % 7, 6) for i in range(10_000)]
    for index in (*range(1995, 2006), *range(4995, 5006)):
        workers[index] = worker(f"w{index}", 0, 6)  # no fill near them: only a mark can show
    workers[5000] = worker("w5000", 0, 6, ok=False)
    workers[2000] = worker("w2000", 0, 6, age=STALE_AFTER + 1)
    lay = layout(chart(*workers), 800, scale)
    picture = decode(render.render_chart(chart(*workers), 800, scale))
    assert picture.height <= chart_layout.MAX_HEIGHT * scale
    for name, index in (("failed", 5000), ("stale", 2000)):
        rows = picture.rows_with(rgb(name), body(lay, picture))
        assert rows, name
        expected = (lay.header_h + (index + 0.5) * lay.row_h) * scale
        assert all(abs(y - expected) <= chart_layout.MARK_MIN_H * scale for y in rows), name
    fine = [worker(f"w{i}", i % 7, 6) for i in range(10_000)]
    plain = decode(render.render_chart(chart(*fine), 800, scale))
    assert plain.count(rgb("failed"), body(lay, plain)) == 0


@pytest.mark.parametrize("text", HOSTILE)
def test_any_string_renders(text: str, engine: str) -> None:
    workers = [worker(text, 1, 2, text), worker("w2", 2, 2, text, ok=False)]
    picture = decode(render.render_chart(chart(*workers, desc=text, jobid=text), 800, 2))
    assert picture.width == 1600


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(st.text(st.characters(exclude_categories=()), max_size=40))
def test_any_unicode_renders(text: str) -> None:
    workers = [worker(text or "w", 1, 3, text), worker("w2", 2, 3, text * 3, ok=False)]
    assert decode(render.render_chart(chart(*workers, desc=text), 300, 1)).width == 300


def test_strings_are_drawn_as_given_with_controls_made_visible() -> None:
    assert printable("a\nb\x00\x7f") == "a\u240ab\u2400\u2421"
    assert printable("\ud800x\x9b2J") == "\ufffdx\ufffd2J"  # U+009B: a terminal's CSI
    for text in ("%s {0} <b>&amp;", "\u05e9\u05dc\u05d5\u05dd", "\u202eevil", "e\u0301"):
        assert printable(text) == text


def test_font_falls_back_when_dejavu_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy engine's choice of font (Pango's fallback is fontconfig's own)."""
    monkeypatch.setattr(text_draw, "PANGO", None)
    assert render_text.choose_family(None) == render_text.FONT
    assert render_text.choose_family("DejaVu Sans") == render_text.FONT
    assert render_text.choose_family("Liberation Sans") == render_text.FALLBACK_FONT
    monkeypatch.setattr(render_text, "font_family", lambda: render_text.FALLBACK_FONT)
    workers = [worker("w1", 8, 10, "lots of RFI")]
    picture = decode(render.render_chart(chart(*workers), 800, 1))
    assert picture.count(light, fill_box(layout(chart(*workers)), 0, 0.8)) > 20


def test_header_figures(engine: str) -> None:
    workers = [worker("w1", 1, 2), worker("w2", 2, 2), worker("w3", 0, 2, ok=False),
               worker("w4", 0, 2, age=STALE_AFTER + 1)]
    job = Job("job1", "a job", NOW, 1)
    job.workers = {w.workid: w for w in workers}
    counts = chart_layout.chart_summary(chart(*workers))
    assert counts == views.summary(job.view(), NOW, STALE_AFTER)  # the page's figures, not a copy
    assert (counts["done"], counts["failed"], counts["stale"]) == (1, 1, 1)
    assert chart_layout.picture_time(0) == "1970-01-01 00:00:00 UTC"
    assert views.figures(worker("w1", 0.5, 3.25)) == "15%  0.5/3.25"
    assert chart_layout.order_key(worker("\u00b2", 1, 2))  # int() refuses '²': must not raise


def test_empty_job_and_not_found_pictures(engine: str) -> None:
    picture = decode(render.render_chart(chart(), 800, 1))
    assert picture.width == 800 and picture.count(dark) > 0
    missing = decode(render.render_not_found(2))
    assert (missing.width, missing.height) == (720, 104)
    assert missing.count(near("failed")) > 50 and missing.count(near("muted-text")) > 50


@pytest.mark.parametrize("width", [200, 800, 4000])
@pytest.mark.parametrize("count", [0, 1, 12, 53, 54, 100, 116, 117, 330, 333, 334, 340, 1000])
def test_picture_height_is_the_drawn_height_without_drawing(width: int, count: int) -> None:
    workers = [worker(f"w{i}", i % 3, 2, ok=i % 5 != 1, age=i * 7) for i in range(count)]
    chart_input = chart(*workers, desc="a job with a long description " * 4)
    assert render.picture_height(chart_input, width) == layout(chart_input, width).height


@pytest.mark.parametrize("engine,refused", [("toy", "\uffff"), ("pango", "\ud800")])
def test_a_string_the_engine_refuses_is_drawn_as_escapes(
        monkeypatch: pytest.MonkeyPatch, engine: str, refused: str) -> None:
    """cairo's toy API refuses noncharacters, PyGObject lone surrogates."""
    if engine == "toy":
        monkeypatch.setattr(text_draw, "PANGO", None)
    elif text_draw.PANGO is None:
        pytest.skip("Pango is the pango extra (make setup installs it)")
    for module in (render, chart_draw, chart_layout):  # let the string reach the engine
        monkeypatch.setattr(module, "printable", lambda text: text)
    workers = [worker(f"w{refused}", 8, 10, f"lots of RFI {refused}")]
    picture = decode(render.render_chart(chart(*workers, desc=refused), 800, 1))
    escaped = [worker(render_text.plain(f"w{refused}"), 8, 10,
                      render_text.plain(f"lots of RFI {refused}"))]
    lay = layout(chart(*escaped, desc=render_text.plain(refused)))
    assert picture.count(light, fill_box(lay, 0, 0.8)) > 20


def test_a_group_s_strings_go_to_cairo_in_one_call_a_colour_with_row_by_row_pixels(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The strings that lie in the fill, those after it, the names and the figures of a
    group are each drawn in one call, and the picture is the one drawn string by string (rows
    of a small job lie apart: no glyph reaches into another's row)."""
    if text_draw.PANGO is None:
        pytest.skip("the word glyphs are Pango's")
    from tornado_progress import pango_words
    job = chart(*(worker(f"w{k}", 90 if k % 2 else 5, 100, f"pass {k} of the calibration")
                  for k in range(9)))
    lay = layout(job)
    calls: list[list[tuple[int, float, float]]] = []
    draw = pango_words.WordGlyphs.draw

    def recorded(self: pango_words.WordGlyphs, ctx: cairo.Context[cairo.ImageSurface],
                 font: tuple[float, bool], glyphs: list[tuple[int, float, float]]) -> None:
        calls.append(glyphs)
        draw(self, ctx, font, glyphs)

    monkeypatch.setattr(pango_words.WordGlyphs, "draw", recorded)
    grouped = decode(render.render_chart(job, 800, 1)).pixels
    in_bars = [{y for _, x, y in glyphs if lay.bar_x < x < lay.bar_x + lay.bar_w}
               for glyphs in calls]
    assert max(len(baselines) for baselines in in_bars) >= 2  # two rows' strings at once
    monkeypatch.setattr(text_draw.PANGO.PangoPen, "placed", lambda *args, **kwargs: None)
    assert decode(render.render_chart(job, 800, 1)).pixels == grouped
