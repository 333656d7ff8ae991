"""Job bodies (bodies.py): built once per key, big ones off the event loop, far-behind cursors
answered with the one whole body, and everything within the cache's byte budget (issue 8,
item 2: 310 polls from distinct versions of big jobs once held the loop for seconds)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import FakeClock
from tornado_progress import bodies as bodies_module
from tornado_progress import views
from tornado_progress.answer_cache import AnswerCache
from tornado_progress.bodies import BodyBuilder
from tornado_progress.model import Job, JobView, LimitReached, Store


def big_job(clock: FakeClock, workers: int) -> Job:
    store = Store(clock=clock)
    store.create("big", "a big job")
    for index in range(workers):
        store.update("big", f"w{index}", index % 7, 6, "x" * (index % 30), index % 11 != 0)
    return store.get("big")


@pytest.fixture
def builder() -> Iterator[BodyBuilder]:
    made = BodyBuilder(AnswerCache(64 << 20), stale_after=300, inline_max_workers=100)
    yield made
    made.close()


@pytest.mark.parametrize("workers", [0, 1, views.ENCODE_CHUNK, views.ENCODE_CHUNK + 1, 1234])
def test_encoding_in_pieces_is_the_plain_encoding(clock: FakeClock, workers: int) -> None:
    job = big_job(clock, workers).view()
    for full in (True, False):
        listed = views.sorted_workers(job)
        assert views.encode_job(job, listed, full, clock(), 300) == views.encode(
            views.job_json(job, listed, full, clock(), 300))


@pytest.mark.gen_test
async def test_a_big_body_is_built_off_the_event_loop(clock: FakeClock,
                                                      builder: BodyBuilder) -> None:
    job = big_job(clock, 20_000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.ensure_future(ticker())
    body = await builder.full(job, clock())
    ticking.cancel()
    assert ticks > 1  # the loop went on while the body was built
    assert body == views.full_body(job.view(), clock(), 300)


@pytest.mark.gen_test
async def test_requests_for_one_body_share_one_build(clock: FakeClock, builder: BodyBuilder,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    job = big_job(clock, 500)
    builds: list[int] = []
    full_body = views.full_body

    def counted(*args: Any) -> bytes:
        builds.append(1)
        return full_body(*args)

    monkeypatch.setattr(views, "full_body", counted)
    answers = await asyncio.gather(*(builder.full(job, clock()) for _ in range(20)))
    assert len(set(answers)) == 1 and len(builds) == 1
    assert await builder.full(job, clock() + 0.5) is answers[0]  # kept
    await builder.full(job, clock() + bodies_module.BODY_MAX_AGE_S + 1)  # too old: rebuilt
    assert len(builds) == 2


@pytest.mark.gen_test
async def test_a_cursor_far_behind_gets_the_one_whole_body(clock: FakeClock,
                                                           builder: BodyBuilder) -> None:
    job = big_job(clock, 2000)
    whole = await builder.full(job, clock())
    share = int(bodies_module.DELTA_MAX_SHARE * 2000)
    near = json.loads(await builder.poll(job, job.version - share, clock()))
    assert not near["full"] and len(near["workers"]) == share
    for behind in (share + 1, 1500, 1999):
        assert await builder.poll(job, job.version - behind, clock()) is whole


@pytest.mark.gen_test
async def test_bodies_stay_within_the_byte_budget(clock: FakeClock) -> None:
    job = big_job(clock, 2000)
    builder = BodyBuilder(AnswerCache(budget_bytes=1_000_000), stale_after=300)
    built = 0
    for since in range(job.version - 256, job.version, 2):
        body = await builder.poll(job, since, clock())
        built += len(body)
        assert json.loads(body)["full"] is False
    builder.close()
    assert built > 2 * builder.answers.budget_bytes
    assert 0 < builder.answers.bytes_used <= builder.answers.budget_bytes
    assert builder.answers.evictions > 0


@pytest.mark.gen_test
async def test_a_job_changing_between_requests_shares_the_build_under_way(
        clock: FakeClock, builder: BodyBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    """60 status requests of a big job updated between each once queued 49 builds, each with
    its own copy of the job; the last answer took 47 s."""
    store = Store(clock=clock)
    for index in range(500):
        store.update("big", f"w{index}", 1, 6, "", True)
    release = threading.Event()
    builds: list[int] = []
    full_body = views.full_body

    def slow(job: JobView, *args: Any) -> bytes:
        builds.append(job.version)
        release.wait(10)
        return full_body(job, *args)

    monkeypatch.setattr(views, "full_body", slow)
    requests = []
    for index in range(60):
        store.update("big", "w0", index, 60, "", True)
        requests.append(asyncio.ensure_future(builder.full(store.get("big"), clock())))
        await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*requests)
    assert len(builds) == 1 and len(set(answers)) == 1
    assert json.loads(answers[0])["version"] == builds[0]


@pytest.mark.gen_test
async def test_builds_in_flight_are_bounded(clock: FakeClock, builder: BodyBuilder,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(clock=clock)
    for job in range(bodies_module.MAX_PENDING + 1):
        for index in range(200):
            store.update(f"job{job}", f"w{index}", 1, 6, "", True)
    release = threading.Event()
    monkeypatch.setattr(views, "full_body", lambda *args: release.wait(10) and b"{}")
    waiting = [asyncio.ensure_future(builder.full(store.get(f"job{job}"), clock()))
               for job in range(bodies_module.MAX_PENDING)]
    await asyncio.sleep(0)
    with pytest.raises(LimitReached, match="ask again"):
        await builder.full(store.get(f"job{bodies_module.MAX_PENDING}"), clock())
    release.set()
    assert await asyncio.gather(*waiting) == [b"{}"] * bodies_module.MAX_PENDING


@pytest.mark.gen_test
async def test_a_delta_past_the_bound_gets_the_shared_whole_body(
        clock: FakeClock, builder: BodyBuilder, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(clock=clock)
    for index in range(1000):
        store.update("big", f"w{index}", 1, 6, "", True)
    job = store.get("big")
    release = threading.Event()
    delta_body = views.delta_body
    monkeypatch.setattr(views, "delta_body",
                        lambda *args: release.wait(10) and delta_body(*args))
    cursors = [job.version - 1 - step for step in range(bodies_module.MAX_PENDING_DELTAS)]
    waiting = [asyncio.ensure_future(builder.poll(job, since, clock())) for since in cursors]
    await asyncio.sleep(0)
    late = asyncio.ensure_future(builder.poll(job, job.version - 100, clock()))
    release.set()
    assert json.loads(await late)["full"] is True
    assert all(not json.loads(body)["full"] for body in await asyncio.gather(*waiting))
