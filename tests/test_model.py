"""The model alone: jobs, workers, versions, deltas, expiry and limits, with an injected clock."""

from __future__ import annotations

import pytest

from tests.conftest import FakeClock
from tornado_progress.limits import Limits, NewJobRate
from tornado_progress.model import (
    BadParameter,
    Forbidden,
    LimitReached,
    Store,
    UnknownJob,
    Worker,
)


def make_store(clock: FakeClock, **limits: float) -> tuple[Store, list[str]]:
    changes: list[str] = []
    store = Store(Limits(**limits), clock=clock, on_change=changes.append)  # type: ignore[arg-type]
    return store, changes


def test_update_creates_a_missing_job_with_empty_desc(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    store.update("j", "w1", 5, 22, "", True)
    job = store.get("j")
    assert job.desc == ""
    assert [w.current for w in job.workers.values()] == [5]


def test_create_after_updates_replaces_the_job_and_drops_its_workers(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    store.update("j", "w1", 5, 22, "", True)
    old_version = store.get("j").version
    job = store.create("j", "second run")
    assert job.workers == {}
    assert job.desc == "second run"
    assert job.version > old_version
    assert job.generation == job.version
    assert store.worker_count == 0


def test_version_increases_on_every_change(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    versions = [store.create("j", "").version]
    for current in range(3):
        versions.append(store.update("j", "w", current, 3, "", True).version)
    assert versions == sorted(set(versions))
    assert store.get("j").version == versions[-1]


def test_space_and_plus_name_the_same_job_and_worker(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    store.create("me:2026-11-29T05:00:00,1+00:00", "")
    store.update("me:2026-11-29T05:00:00,1 00:00", "a+b", 1, 2, "", True)
    store.update("me:2026-11-29T05:00:00,1+00:00", "a b", 2, 2, "", True)
    job = store.get("me:2026-11-29T05:00:00,1 00:00")
    assert len(job.workers) == 1
    assert job.jobid == "me:2026-11-29T05:00:00,1+00:00"
    assert next(iter(job.workers.values())).current == 2


def test_on_change_names_only_the_changed_job(clock: FakeClock) -> None:
    store, changes = make_store(clock)
    store.create("a", "")
    store.update("b", "w", 1, 2, "", True)
    store.delete("a")
    assert changes == ["a", "b", "a"]


def test_delete_unknown_job_raises(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    with pytest.raises(UnknownJob):
        store.delete("nope")


def test_changed_since_gives_only_newer_workers(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    store.create("j", "")
    for name in ("w1", "w2", "w3"):
        store.update("j", name, 0, 10, "", True)
    since = store.get("j").version
    store.update("j", "w2", 5, 10, "", True)
    changed = store.get("j").changed_since(since)
    assert changed is not None
    assert [w.workid for w in changed] == ["w2"]


def test_changed_since_asks_for_full_when_delta_is_not_smaller(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    job = store.create("j", "")
    since = job.version
    store.update("j", "w1", 1, 10, "", True)
    assert store.get("j").changed_since(since) is None  # every worker changed


def test_changed_since_asks_for_full_before_generation_or_ahead(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    store.update("j", "w1", 1, 10, "", True)
    store.update("j", "w2", 1, 10, "", True)
    old = store.get("j").version
    store.create("j", "again")
    store.update("j", "w1", 1, 10, "", True)
    store.update("j", "w2", 1, 10, "", True)
    job = store.get("j")
    assert job.changed_since(old) is None
    assert job.changed_since(job.version + 100) is None


def test_job_expires_after_keep_seconds_since_last_update(clock: FakeClock) -> None:
    store, changes = make_store(clock, keep_seconds=100)
    store.create("j", "")
    clock.advance(60)
    store.update("j", "w", 1, 2, "", True)
    clock.advance(99)
    assert store.find("j") is not None
    clock.advance(2)
    with pytest.raises(UnknownJob):
        store.get("j")
    assert "j" not in store.jobs
    assert changes[-1] == "j"  # waiters learn of the expiry


def test_sweep_drops_expired_jobs_only(clock: FakeClock) -> None:
    store, _ = make_store(clock, keep_seconds=100)
    store.create("old", "")
    clock.advance(50)
    store.update("new", "w", 1, 2, "", True)
    clock.advance(60)
    assert store.sweep() == ["old"]
    assert list(store.jobs) == ["new"]
    assert store.worker_count == 1


def test_job_limit_never_drops_an_existing_job(clock: FakeClock) -> None:
    store, _ = make_store(clock, max_jobs=2)
    store.create("a", "")
    store.create("b", "")
    with pytest.raises(LimitReached) as raised:
        store.update("c", "w", 1, 2, "", True)
    assert raised.value.status == 429
    assert "--max-jobs" in raised.value.message
    assert sorted(store.jobs) == ["a", "b"]
    store.create("a", "replacing an existing job is fine")


def test_job_limit_makes_room_from_expired_jobs(clock: FakeClock) -> None:
    store, _ = make_store(clock, max_jobs=1, keep_seconds=10)
    store.create("a", "")
    clock.advance(11)
    store.create("b", "")
    assert list(store.jobs) == ["b"]


def test_worker_limit(clock: FakeClock) -> None:
    store, _ = make_store(clock, max_workers_per_job=2)
    store.update("j", "w1", 1, 2, "", True)
    store.update("j", "w2", 1, 2, "", True)
    version = store.get("j").version
    with pytest.raises(LimitReached) as raised:
        store.update("j", "w3", 1, 2, "", True)
    assert "--max-workers-per-job" in raised.value.message
    store.update("j", "w1", 2, 2, "", True)  # known workers still report
    assert len(store.get("j").workers) == 2
    assert store.get("j").version > version


def test_total_worker_limit_across_jobs(clock: FakeClock) -> None:
    store, _ = make_store(clock, max_workers=2)
    store.update("a", "w1", 1, 2, "", True)
    store.update("b", "w1", 1, 2, "", True)
    with pytest.raises(LimitReached) as raised:
        store.update("c", "w1", 1, 2, "", True)
    assert "--max-workers)" in raised.value.message
    assert sorted(store.jobs) == ["a", "b"]  # the job it would have created is not left behind
    store.update("a", "w1", 2, 2, "", True)


def test_rate_is_smoothed_and_resets_when_a_worker_starts_again(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    store.update("j", "w", 0, 100, "", True)
    clock.advance(10)
    first = store.update("j", "w", 10, 100, "", True)
    assert first.rate == pytest.approx(1.0)
    clock.advance(10)
    second = store.update("j", "w", 40, 100, "", True)
    assert second.rate is not None and 1.0 < second.rate < 3.0
    restarted = store.update("j", "w", 0, 100, "", True)
    assert restarted.rate is None


@pytest.mark.parametrize(("current", "total", "fraction"), [
    (5, 22, 5 / 22), (30, 22, 1.0), (0, 0, 0.0), (3, 0, 1.0), (0, 10, 0.0), (2.5, 10, 0.25),
])
def test_fraction_clamps_and_handles_zero_total(current: float, total: float,
                                                fraction: float) -> None:
    worker = Worker("w", current, total, "", True, 0.0, 1, None)
    assert worker.fraction == pytest.approx(fraction)


def test_current_above_total_is_stored_as_sent(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    worker = store.update("j", "w", 30, 22, "", True)
    assert (worker.current, worker.total) == (30, 22)


def test_workers_are_kept_in_order_of_last_change(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    for name in ("w1", "w2", "w3"):
        store.update("j", name, 0, 1, "", True)
    store.update("j", "w1", 1, 1, "", True)
    assert [w.workid for w in store.get("j").workers.values()] == ["w2", "w3", "w1"]


def test_load_drops_jobs_that_expired_and_keeps_the_counter_rising(clock: FakeClock) -> None:
    source, _ = make_store(clock, keep_seconds=100)
    source.create("old", "")
    clock.advance(80)
    source.update("young", "w", 1, 2, "", True)
    clock.advance(30)
    target, _ = make_store(clock, keep_seconds=100)
    target.version = 0
    target.load(list(source.jobs.values()), source.version)
    assert list(target.jobs) == ["young"]
    assert target.worker_count == 1
    assert target.version == source.version


def test_a_key_protects_every_write_but_not_reads(clock: FakeClock) -> None:
    store, _ = make_store(clock)
    store.create("j", "", write_key="k" * 8)
    for write in (lambda key: store.update("j", "w", 1, 2, "", True, key),
                  lambda key: store.delete("j", key),
                  lambda key: store.create("j", "", key)):
        for key in (None, "other-key"):
            with pytest.raises(Forbidden, match="protected by a key"):
                write(key)
    assert store.get("j").workers == {}
    store.update("j", "w", 1, 2, "", True, "k" * 8)
    assert store.create("j", "again", "k" * 8).write_key == "k" * 8
    store.delete("j", "k" * 8)


def test_a_refused_keyless_update_changes_nothing(clock: FakeClock) -> None:
    store, changes = make_store(clock)
    store.update("j", "w", 1, 2, "", True, write_key="k" * 8)
    version, count = store.version, store.worker_count
    with pytest.raises(Forbidden):
        store.update("j", "w", 2, 2, "", True)
    assert (store.version, store.worker_count, store.get("j").workers["w"].current) == (
        version, count, 1)
    assert changes == ["j"]


def test_require_key_refuses_only_new_jobs_without_one(clock: FakeClock) -> None:
    store, _ = make_store(clock, require_key=True)
    with pytest.raises(Forbidden, match="--require-key"):
        store.create("j", "")
    with pytest.raises(Forbidden, match="--require-key"):
        store.update("j", "w", 1, 2, "", True)
    assert not store.jobs
    store.update("j", "w", 1, 2, "", True, write_key="k" * 8)
    store.update("j", "w", 2, 2, "", True, write_key="k" * 8)


def test_new_jobs_per_client_refill_over_a_minute(clock: FakeClock) -> None:
    store, _ = make_store(clock, new_jobs_per_minute=2)
    store.create("a", "", client="10.0.0.1")
    store.update("b", "w", 1, 2, "", True, client="10.0.0.1")
    with pytest.raises(LimitReached, match=r"10\.0\.0\.1 has made 2 new jobs"):
        store.create("c", "", client="10.0.0.1")
    store.create("c", "", client="10.0.0.2")  # another address has its own allowance
    store.create("a", "again", client="10.0.0.1")  # not a new job
    clock.advance(30)  # half a minute refills one
    store.create("d", "", client="10.0.0.1")
    with pytest.raises(LimitReached):
        store.create("e", "", client="10.0.0.1")


def test_new_job_rate_forgets_clients_whose_allowance_is_full(clock: FakeClock) -> None:
    rate = NewJobRate(per_minute=1, max_clients=3)
    for client in ("a", "b", "c"):
        assert rate.take(client, clock())
    clock.advance(60)
    assert rate.take("d", clock())
    assert len(rate._buckets) == 1  # a, b and c were full again: forgotten
    assert not rate.take("d", clock())


def test_a_refused_worker_spends_none_of_the_allowance(clock: FakeClock) -> None:
    store, _ = make_store(clock, new_jobs_per_minute=1, max_workers=1)
    store.update("a", "w", 1, 2, "", True, client="c")
    clock.advance(60)
    with pytest.raises(LimitReached, match="--max-workers"):
        store.update("b", "w", 1, 2, "", True, client="c")
    store.delete("a")
    store.update("b", "w", 1, 2, "", True, client="c")  # the allowance is still there


def test_a_full_table_of_clients_forgets_the_least_active_half(clock: FakeClock) -> None:
    rate = NewJobRate(per_minute=5, max_clients=4)
    for client in ("a", "b", "c", "d"):
        assert rate.take(client, clock())
    assert rate.take("a", clock())  # a is now the most recently active
    assert rate.take("e", clock())
    assert list(rate._buckets) == ["d", "a", "e"]


def test_a_jobs_own_maxage_decides_its_expiry_capped_by_the_server(clock: FakeClock) -> None:
    store, _ = make_store(clock, keep_seconds=100, max_keep_seconds=1000)
    short = store.create("short", "", keep_seconds=10)
    long = store.create("long", "", keep_seconds=10**9)
    store.create("default", "")
    assert (store.keep_seconds(short), store.keep_seconds(long)) == (10, 1000)
    clock.advance(11)
    assert store.find("short") is None and store.find("default") is not None
    clock.advance(100)
    assert store.sweep() == ["default"]
    clock.advance(900)
    assert store.find("long") is None


def test_expected_workers_are_the_new_jobs_own_and_bounded(clock: FakeClock) -> None:
    store, _ = make_store(clock, max_workers_per_job=50)
    assert store.create("j", "", expected=50).expected == 50
    for bad in (0, 51):
        with pytest.raises(BadParameter, match="workers must be an integer from 1 to 50"):
            store.create("j", "", expected=bad)
    assert store.get("j").expected == 50  # a refused create changes nothing
    store.update("j", "w", 1, 2, "", True)
    assert store.get("j").expected == 50  # updates keep it
    assert store.create("j", "").expected is None  # a re-create sets its own
