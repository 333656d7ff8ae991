"""Memory stays within its bounds under the attacks of issue 8, at a small scale: answers of
every kind (JSON bodies, PNGs) share one byte-bounded AnswerCache, and nothing else the web
layer keeps grows with what clients ask for. The full-size attacks, with the server's RSS and
an update's latency, are in bench/stress_memory.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Fetch, as_json
from tests.render_support import decode
from tornado_progress import render_handler
from tornado_progress.answer_cache import AnswerCache
from tornado_progress.bodies import DELTA_MAX_SHARE
from tornado_progress.config import Settings
from tornado_progress.limits import Limits
from tornado_progress.model import Store
from tornado_progress.render_handler import ChartRenderer

BUDGET = 1 << 20


@pytest.fixture
def limits() -> Limits:
    """No limit on new jobs per address: one test makes a few hundred."""
    return Limits(new_jobs_per_minute=0)


@pytest.fixture
def settings(tmp_path: Path, limits: Limits) -> Settings:
    """The defaults of tests/conftest.py with a cache small enough to fill in a test."""
    return Settings(snapshot_dir=tmp_path / "snapshots", limits=limits, cache_bytes=BUDGET)


@pytest.mark.gen_test
async def test_renders_at_many_scales_stay_within_the_cache_budget(
        fetch: Fetch, store: Store, answers: AnswerCache) -> None:
    for index in range(20):
        store.update("job1", f"w{index}", index, 20, "step", True)
    for step in range(20):
        scale = 1 + step / 10
        response = await fetch("render", jobid="job1", width=200, scale=scale)
        assert response.code == 200 and decode(response.body).width == round(200 * scale)
        assert answers.bytes_used <= BUDGET
    # The pictures went into the one cache, and pushed each other out of it.
    assert len(answers) > 0 and answers.evictions > 0


@pytest.mark.gen_test
async def test_polls_from_many_versions_of_a_large_job_stay_within_the_cache_budget(
        fetch: Fetch, store: Store, answers: AnswerCache) -> None:
    for index in range(5000):
        store.update("big", f"w{index}", index % 7, 6, f"step {index % 13}", index % 97 != 3)
    job = store.get("big")
    for step in range(60):
        since = job.version - 1 - step * 80
        body = as_json(await fetch("poll", jobid="big", since=since))
        changed = 1 + step * 80
        if changed <= DELTA_MAX_SHARE * 5000:
            assert len(body["workers"]) == changed and not body["full"]
        else:  # one whole job for every cursor this far behind
            assert len(body["workers"]) == 5000 and body["full"]
        assert answers.bytes_used <= BUDGET
    assert len(answers) > 0 and answers.evictions > 0


@pytest.mark.gen_test
async def test_renders_of_many_jobs_keep_the_stale_times_bounded(
        fetch: Fetch, store: Store, renderer: ChartRenderer) -> None:
    jobs = render_handler.STALE_TIMES_JOBS + 20
    for index in range(jobs):
        store.update(f"job{index}", "w1", 1, 2, "", True)
        assert (await fetch("render", jobid=f"job{index}", width=200)).code == 200
    assert len(renderer.stale_times) == render_handler.STALE_TIMES_JOBS
    assert renderer.stale_times.size == render_handler.STALE_TIMES_JOBS
