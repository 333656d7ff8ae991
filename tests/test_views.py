"""The job JSON and its helpers: natural order, summary, percent, body caching."""

from __future__ import annotations

from tests.conftest import FakeClock
from tornado_progress import views
from tornado_progress.model import Store


def test_natural_order_and_odd_digits() -> None:
    names = ["w10", "w2", "W1", "²", "w٣", "x", "w1", "w01", "ä", "a", "é1", "e2", "É0", "w",
             "w1a"]
    # Digits by value (ASCII ones), the rest by code point of the lower case, then exactly.
    assert sorted(names, key=views.natural_key) == [
        "a", "e2", "w", "W1", "w01", "w1", "w1a", "w2", "w10", "w٣", "x", "²", "ä", "É0", "é1"]


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
    summary = views.summary(store.get("j").view(), clock(), stale_after=12)
    assert (summary["running"], summary["done"], summary["failed"], summary["stale"]) == (
        2, 1, 1, 1)
    assert summary["eta_s"] == 90
    assert summary["fraction"] == (0.5 + 0.1 + 1 + 0.01 + 0) / 5


def test_percent_rounds_down_so_100_means_done() -> None:
    assert [views.percent(f) for f in (0.0, 0.999, 1.0, 1.5, 0.29, 0.57)] == [0, 99, 100, 100,
                                                                              29, 57]


def test_expected_workers_not_heard_from_count_as_waiting_at_zero(clock: FakeClock) -> None:
    store = Store(clock=clock)
    store.create("j", "", expected=100)
    for workid in ("a", "b", "c"):
        store.update("j", workid, 10, 10, "", True)
    summary = views.summary(store.get("j").view(), clock(), stale_after=60)
    assert (summary["workers"], summary["expected"], summary["waiting"]) == (3, 100, 97)
    assert summary["fraction"] == 0.03  # not 100 %: 97 workers have not started
    assert summary["eta_s"] is None
    for index in range(120):  # more workers than expected: the fraction is over those seen
        store.update("j", f"x{index}", 1, 2, "", True)
    summary = views.summary(store.get("j").view(), clock(), stale_after=60)
    assert summary["waiting"] == 0
    assert summary["fraction"] == (3 + 60) / 123


def test_each_worker_says_its_state_in_words(clock: FakeClock) -> None:
    store = Store(clock=clock)
    store.update("j", "quiet", 1, 10, "", True)
    clock.advance(100)
    store.update("j", "run", 1, 10, "", True)
    store.update("j", "done", 10, 10, "", True)
    store.update("j", "failed", 1, 10, "", False)
    workers = [views.worker_json(worker, clock(), 60) for worker in store.get("j").workers.values()]
    assert {w["workid"]: w["state"] for w in workers} == {
        "quiet": "stale", "run": "running", "done": "done", "failed": "failed"}
