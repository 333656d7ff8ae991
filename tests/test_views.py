"""The job JSON and its helpers: natural order, summary, percent, body caching."""

from __future__ import annotations

import json

from tests.conftest import FakeClock
from tornado_progress import views
from tornado_progress.answer_cache import AnswerCache
from tornado_progress.model import Store


def test_natural_order_and_odd_digits() -> None:
    names = ["w10", "w2", "W1", "²", "w٣", "x"]
    assert sorted(names, key=views.natural_key) == ["W1", "w2", "w٣", "w10", "x", "²"]


def test_summary_counts_add_up_and_eta_is_the_slowest(clock: FakeClock) -> None:
    store = Store(clock=clock)
    for workid in ("run", "slow", "done", "failed", "quiet"):
        store.update("j", workid, 0, 100, "", True)
    clock.advance(10)
    store.update("j", "run", 50, 100, "", True)  # 5/s: 10 s left
    store.update("j", "slow", 10, 100, "", True)  # 1/s: 90 s left
    store.update("j", "done", 100, 100, "", True)
    store.update("j", "failed", 1, 100, "", False)
    clock.advance(5)
    summary = views.summary(store.get("j"), clock(), stale_after=12)
    assert (summary["running"], summary["done"], summary["failed"], summary["stale"]) == (
        2, 1, 1, 1)
    assert summary["eta_s"] == 90
    assert summary["fraction"] == (0.5 + 0.1 + 1 + 0.01 + 0) / 5


def test_percent_rounds_down_so_100_means_done() -> None:
    assert [views.percent(f) for f in (0.0, 0.999, 1.0, 1.5, 0.29, 0.57)] == [0, 99, 100, 100,
                                                                              29, 57]


def test_cached_bodies_stay_within_the_byte_budget(clock: FakeClock) -> None:
    """Issue 8: polls with many distinct cursors once grew a count-bounded cache of delta
    bodies to most of a gigabyte; the cache is now bounded in bytes."""
    store = Store(clock=clock)
    for index in range(2000):
        store.update("j", f"w{index}", 0, 1, "x" * 100, True)
    job = store.get("j")
    answers = AnswerCache(budget_bytes=1_000_000)
    built = 0
    for since in range(job.version - 1500, job.version, 10):
        body = views.poll_body(answers, job, since, clock(), 300)
        built += len(body)
        assert json.loads(body)["full"] is False
    assert built > 10 * answers.budget_bytes
    assert 0 < answers.bytes_used <= answers.budget_bytes
    assert answers.evictions > 0
