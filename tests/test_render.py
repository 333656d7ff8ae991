"""The PNG chart and the `render` endpoint: pixel-level property checks on pictures read back
with pycairo (colours, fill lengths, text inside bars, sizes, the height bound, hostile strings)
and the serving rules (ETag, 304, one render per key kept in the AnswerCache, the pixel budget,
400 and 404 answers)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from xml.etree import ElementTree

import cairo
import hypothesis
import pytest
from hypothesis import strategies as st

from tests.conftest import FakeClock, Fetch, as_json
from tests.render_support import (
    NOW,
    STALE_AFTER,
    body,
    chart,
    dark,
    decode,
    fill_box,
    job_layout,
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
    render_handler,
    render_text,
    text_draw,
    views,
)
from tornado_progress.answer_cache import AnswerCache
from tornado_progress.config import Settings
from tornado_progress.model import Job, Store
from tornado_progress.picture import Style
from tornado_progress.printable import ELLIPSIS, printable
from tornado_progress.render_handler import ChartRenderer

HOSTILE = ["\x00nul", "a\nb\tc\rd\x1b[31m\x7f", "\ud800lone", "\u05e9\u05dc\u05d5\u05dd RTL",
           "\u202eevil\u202c", "\U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467",
           "\u0301", "%s %d {0} <b>&amp;</b>", "\ufeff\u200b", "\U0010ffff" * 40, "x" * 1024]


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


# The endpoint --------------------------------------------------------------------------------


def job_in(store: Store, clock: FakeClock, count: int = 3, **extra: Any) -> Job:
    """A job with `count` workers recorded at the fake clock's time."""
    store.clock = clock
    for index in range(count):
        store.update("job1", f"w{index}", index, count, f"step {index}", True)
    for workid, values in extra.items():
        store.update("job1", workid, *values)
    return store.get("job1")


@pytest.mark.gen_test
async def test_render_answers_png_with_etag_and_304(fetch: Fetch, store: Store,
                                                    clock: FakeClock) -> None:
    job_in(store, clock)
    first = await fetch("render", jobid="job1")
    assert first.code == 200 and first.headers["Content-Type"] == "image/png"
    assert first.headers["Cache-Control"] == "no-cache"
    assert decode(first.body).width == 800
    etag = first.headers["Etag"]
    again = await fetch("render", jobid="job1", headers={"If-None-Match": etag})
    assert again.code == 304 and again.body == b""
    other = await fetch("render", jobid="job1", width=400, headers={"If-None-Match": etag})
    assert other.code == 200 and other.headers["Etag"] != etag
    store.update("job1", "w1", 2, 3, "", True)
    changed = await fetch("render", jobid="job1", headers={"If-None-Match": etag})
    assert changed.code == 200 and changed.headers["Etag"] != etag


@pytest.mark.gen_test
async def test_one_render_per_key_kept_in_the_answer_cache(
        fetch: Fetch, store: Store, clock: FakeClock, renderer: ChartRenderer,
        answers: AnswerCache, monkeypatch: pytest.MonkeyPatch) -> None:
    job = job_in(store, clock)
    made: list[bytes] = []
    original = render.render_chart

    def counting(chart_input: render.ChartInput, width: int, scale: float,
                 how: Style | None = None) -> bytes:
        made.append(original(chart_input, width, scale, how))
        return made[-1]

    monkeypatch.setattr(render, "render_chart", counting)
    bodies = [(await fetch("render", jobid="job1", width=500)).body for _ in range(3)]
    assert len(made) == 1 and bodies == [made[0]] * 3
    key = renderer.key(job, 500, 1, clock.now, STALE_AFTER)
    assert answers.get(key.cache_key) is made[0]
    assert not hasattr(job, "cache")  # web-layer caches never live on model objects
    await fetch("render", jobid="job1", width=500, scale=2)
    assert len(made) == 2


@pytest.mark.gen_test
async def test_concurrent_requests_share_the_render_in_flight(
        store: Store, clock: FakeClock, renderer: ChartRenderer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    job = job_in(store, clock)
    release = threading.Event()
    calls: list[int] = []

    def held(chart_input: render.ChartInput, width: int, scale: float,
             how: Style | None = None) -> bytes:
        calls.append(width)
        release.wait(10)
        return b"png"

    monkeypatch.setattr(render, "render_chart", held)
    key = renderer.key(job, 800, 1, NOW, STALE_AFTER)
    chart_input = render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()), NOW,
                                    STALE_AFTER)
    answers = AnswerCache(1 << 20)

    async def let_go() -> bytes:
        release.set()
        return b""

    both = await asyncio.gather(renderer.picture(job, key, chart_input, answers),
                                renderer.picture(job, key, chart_input, answers), let_go())
    assert list(both[:2]) == [b"png", b"png"] and calls == [800]
    assert answers.get(key.cache_key) == b"png"
    assert renderer.in_flight == 0


@pytest.mark.gen_test
async def test_worker_turning_stale_changes_the_picture(fetch: Fetch, store: Store,
                                                        clock: FakeClock,
                                                        settings: Settings) -> None:
    job = job_in(store, clock, count=0, w1=(1, 2, "", True))
    first = await fetch("render", jobid="job1")
    etag = first.headers["Etag"]
    clock.advance(settings.stale_after - 1)
    assert (await fetch("render", jobid="job1", headers={"If-None-Match": etag})).code == 304
    clock.advance(2)
    later = await fetch("render", jobid="job1", headers={"If-None-Match": etag})
    assert later.code == 200 and later.headers["Etag"] != etag
    before, after = decode(first.body), decode(later.body)
    box = body(job_layout(job, clock.now, settings.stale_after), after)
    assert before.count(rgb("stale"), box) == 0 and after.count(rgb("stale"), box) > 0


@pytest.mark.gen_test
async def test_width_and_scale_over_http(fetch: Fetch, store: Store, clock: FakeClock) -> None:
    job_in(store, clock)
    picture = decode((await fetch("render", jobid="job1", width=300, scale=2)).body)
    assert picture.width == 600 and picture.count(rgb("ok")) > 0


@pytest.mark.gen_test
@pytest.mark.parametrize("name,value", [("width", "199"), ("width", "4001"), ("width", "abc"),
                                        ("width", "800.5"), ("scale", "0.5"), ("scale", "5"),
                                        ("scale", "x"), ("scale", "nan")])
async def test_bad_width_or_scale_is_answered_400(fetch: Fetch, store: Store, clock: FakeClock,
                                                  name: str, value: str) -> None:
    job_in(store, clock)
    response = await fetch("render", jobid="job1", **{name: value})
    assert response.code == 400
    assert as_json(response)["error"].startswith(f"{name} must be")


@pytest.mark.gen_test
async def test_unknown_job_gets_a_small_404_png(fetch: Fetch) -> None:
    response = await fetch("render", jobid="nobody")
    assert response.code == 404 and response.headers["Content-Type"] == "image/png"
    picture = decode(response.body)
    assert picture.width <= 400 and picture.height <= 80
    assert picture.count(near("failed")) > 20 and picture.count(near("muted-text")) > 20


@pytest.mark.gen_test
async def test_10000_workers_over_http(fetch: Fetch, store: Store, clock: FakeClock) -> None:
    job = job_in(store, clock, count=10_000, w5000=(0, 6, "broke", False))
    picture = decode((await fetch("render", jobid="job1")).body)
    assert picture.height <= chart_layout.MAX_HEIGHT
    box = body(job_layout(job, clock.now, STALE_AFTER), picture)
    assert picture.count(rgb("failed"), box) > 0


@pytest.mark.gen_test
async def test_hostile_strings_over_http(fetch: Fetch) -> None:
    for text in HOSTILE:
        if "\ud800" in text or "\x00" in text:
            continue  # not expressible in a UTF-8 query string
        assert (await fetch("update", jobid="job1", workid=text[:256], current=1, total=2,
                            desc=text)).code == 200
    response = await fetch("render", jobid="job1", scale=2)
    assert response.code == 200 and decode(response.body).width == 1600


@pytest.mark.gen_test
async def test_too_many_renders_in_flight_is_429(fetch: Fetch, store: Store, clock: FakeClock,
                                                 renderer: ChartRenderer) -> None:
    job_in(store, clock)
    renderer.max_pending = 0
    response = await fetch("render", jobid="job1")
    assert response.code == 429 and "charts" in as_json(response)["error"]


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


def test_stale_times_are_kept_by_the_renderer_bounded_in_jobs_and_times() -> None:
    times = render_handler.StaleTimes(max_times=100, max_jobs=4)
    jobs = []
    for index in range(10):
        job = Job(f"job{index}", "", NOW, index)
        job.workers = {f"w{k}": worker(f"w{k}", 1, 2, age=k) for k in range(40)}
        jobs.append(job)
        assert times.count(job, NOW, 10.0) == 40 - 11  # updated more than 10 s ago
        assert len(times) <= 4 and times.size <= 100
    job = jobs[-1]
    job.workers["w0"] = worker("w0", 2, 2)  # done: no longer running, and so never stale
    job.version += 1
    # Within the second, an older version's count, told apart; past it, counted again.
    assert times.count(job, NOW, 0.5) == -1 - 39
    assert times.count(job, NOW + render_handler.STALE_TIMES_RESORT_S, 0.5) == 39
    huge = Job("huge", "", NOW, 99)
    huge.workers = {f"w{k}": worker(f"w{k}", 1, 2, age=k) for k in range(200)}
    assert times.count(huge, NOW, 10.0) == 200 - 11 and times.size <= 100


@pytest.mark.gen_test
async def test_a_chart_past_the_pixel_budget_is_refused_before_drawing(
        fetch: Fetch, store: Store, clock: FakeClock, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    job_in(store, clock, count=400)  # enough workers to reach MAX_HEIGHT
    drawn: list[tuple[int, float]] = []
    original = render.render_chart

    def counting(chart_input: render.ChartInput, width: int, scale: float,
                 how: Style | None = None) -> bytes:
        drawn.append((width, scale))
        # Never the gigabyte surface, should the budget fail: an empty body fails the test.
        return original(chart_input, width, scale, how) if width * scale <= 1000 else b""

    monkeypatch.setattr(render, "render_chart", counting)
    response = await fetch("render", jobid="job1", width=4000, scale=4)
    assert response.code == 400 and drawn == []
    assert as_json(response)["error"] == (
        "the chart would be 16000 x 16384 device pixels (262144000), more than the budget of "
        f"{settings.max_render_pixels} (option --max-render-pixels); ask for a smaller width "
        "or scale")
    fits = await fetch("render", jobid="job1", width=800, scale=1)
    assert fits.code == 200 and decode(fits.body).height == chart_layout.MAX_HEIGHT
    assert drawn == [(800, 1)]


@pytest.mark.gen_test
async def test_a_small_job_is_measured_against_the_budget_at_its_own_height(
        fetch: Fetch, store: Store, clock: FakeClock) -> None:
    job_in(store, clock, count=2)
    response = await fetch("render", jobid="job1", width=4000, scale=2)
    assert response.code == 200  # 8000 px wide, but only a few hundred high
    assert decode(response.body).width == 8000


@pytest.mark.gen_test
async def test_the_unknown_job_picture_is_drawn_once_per_scale_step(
        fetch: Fetch, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[float] = []
    original = render.render_not_found

    def counting(*args: Any) -> bytes:
        drawn.append(args[0])
        return original(*args)

    monkeypatch.setattr(render, "render_not_found", counting)
    scales = ["1", "1.2", "1.5", "1.7", "2", "2.5", "3", "3.3", "4", "1.01", "2.0001"]
    bodies: dict[str, bytes] = {}
    for index in range(60):
        scale = scales[index % len(scales)]
        response = await fetch("render", jobid=f"nobody{index}", scale=scale)
        assert response.code == 404 and response.headers["Content-Type"] == "image/png"
        assert decode(response.body).width == round(
            360 * render_handler.not_found_scale(float(scale)))
        bodies.setdefault(scale, response.body)
        assert response.body == bodies[scale]  # whatever the jobid
    assert sorted(drawn) == [1.0, 1.5, 2.0, 3.0, 4.0]


def test_a_busy_jobs_times_are_sorted_at_most_once_a_second(clock: FakeClock) -> None:
    """Each render of a busy 100,000-worker job once sorted every update time on the loop."""
    store = Store(clock=clock)
    for index in range(10):
        store.update("busy", f"w{index}", 1, 2, "", True)
    stale_times = render_handler.StaleTimes()
    exact = stale_times.count(store.get("busy"), clock(), 300)
    store.update("busy", "w0", 2, 4, "", True)  # a new version within the second
    approximate = stale_times.count(store.get("busy"), clock(), 300)
    assert exact == 0 and approximate == -1  # an older version's count, told apart
    clock.advance(1.5)
    store.update("busy", "w1", 2, 4, "", True)
    assert stale_times.count(store.get("busy"), clock(), 300) == 0  # sorted again: exact


def svg_root(body: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(body)


@pytest.mark.gen_test
async def test_svg_is_the_same_chart_as_vectors(fetch: Fetch, store: Store,
                                                clock: FakeClock) -> None:
    job_in(store, clock)
    store.update("job1", "w<&>\x1b", 1, 3, "text \x00 with <markup>", True)
    answer = await fetch("render", jobid="job1", format="svg", width=600, scale=3)
    assert answer.code == 200 and answer.headers["Content-Type"] == "image/svg+xml"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    root = svg_root(answer.body)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == "600px" and str(root.get("height")).endswith("px")
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text is not None and title.text.startswith("job1: ")
    assert len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 5
    etag = answer.headers["Etag"]
    assert etag != (await fetch("render", jobid="job1", width=600)).headers["Etag"]
    assert (await fetch("render", jobid="job1", format="svg", width=600,
                        headers={"If-None-Match": etag})).code == 304
    unknown = await fetch("render", jobid="nobody", format="SVG")
    assert unknown.code == 404 and svg_root(unknown.body).get("width") == "360px"


@pytest.mark.gen_test
async def test_the_dark_theme_draws_on_a_dark_background(fetch: Fetch, store: Store,
                                                         clock: FakeClock) -> None:
    job_in(store, clock)
    light = decode((await fetch("render", jobid="job1")).body)
    dark = decode((await fetch("render", jobid="job1", theme="dark")).body)
    background = palette.DARK_COLOURS["background"]
    assert light.at(2, 2) == rgb("background")
    assert dark.at(2, 2) == background[0] << 16 | background[1] << 8 | background[2]
    svg = (await fetch("render", jobid="job1", theme="dark", format="svg")).body.decode()
    red, green, blue = (100 * channel / 255 for channel in background)
    assert f"rgb({red:.6f}%,{green:.6f}%,{blue:.6f}%)" in svg  # red and blue not swapped


@pytest.mark.gen_test
@pytest.mark.parametrize(("name", "value"), [("format", "gif"), ("theme", "blue")])
async def test_an_unknown_format_or_theme_is_answered_400(fetch: Fetch, store: Store,
                                                          clock: FakeClock, name: str,
                                                          value: str) -> None:
    job_in(store, clock)
    answer = await fetch("render", jobid="job1", **{name: value})
    assert answer.code == 400
    assert as_json(answer)["error"].startswith(f"{name} must be one of ")
