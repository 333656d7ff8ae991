"""The `render` endpoint: the serving rules (ETag, 304, one render per key kept in the
AnswerCache, renders in flight shared, the pixel budget, 400, 404 and 429 answers, stale counts),
SVG and the dark theme over HTTP."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.conftest import FakeClock, Fetch, as_json
from tests.render_support import (
    HOSTILE,
    NOW,
    STALE_AFTER,
    body,
    chart,
    decode,
    job_layout,
    near,
    rgb,
    worker,
)
from tornado_progress import chart_layout, palette, render, render_handler
from tornado_progress.answer_cache import AnswerCache
from tornado_progress.config import Settings
from tornado_progress.model import Job, Store
from tornado_progress.picture import Style
from tornado_progress.render_handler import ChartRenderer


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
                 how: Style | None = None, pieces: Any = None) -> bytes:
        made.append(original(chart_input, width, scale, how, pieces))
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
             how: Style | None = None, pieces: Any = None) -> bytes:
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
                 how: Style | None = None, pieces: Any = None) -> bytes:
        drawn.append((width, scale))
        # Never the gigabyte surface, should the budget fail: an empty body fails the test.
        return original(chart_input, width, scale, how, pieces) if width * scale <= 1000 else b""

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


def test_a_chart_is_measured_for_the_budget_only_where_the_tallest_would_not_fit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[int] = []

    def height(chart_input: render.ChartInput, width: int) -> int:
        measured.append(width)
        return 300
    monkeypatch.setattr(render, "picture_height", height)
    small = chart(worker("w1", 1, 2))
    assert render_handler.chart_refusal(small, 800, 2, 16_000_000) is None
    assert measured == []  # 1600 x 8192 device pixels at most: within the budget
    assert render_handler.chart_refusal(small, 4000, 2, 16_000_000) is None
    assert measured == [4000]
    assert "more than the budget" in str(render_handler.chart_refusal(small, 4000, 4, 16_000_000))


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
