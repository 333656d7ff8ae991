"""Waiters alone: per-job wakes, timeouts, discards, and pacing of a busy job's viewers."""

from __future__ import annotations

import asyncio

import pytest

from tornado_progress.longpoll import Waiters


@pytest.mark.gen_test
async def test_wake_answers_only_that_jobs_waiters() -> None:
    waiters = Waiters()
    mine, other = waiters.park("a", 30), waiters.park("b", 30)
    waiters.wake("a")
    assert await mine is True
    assert not other.done()
    assert waiters.count == 1
    waiters.discard("b", other)
    assert await other is False
    assert waiters.count == 0


@pytest.mark.gen_test
async def test_timeout_answers_false_and_forgets_the_waiter() -> None:
    waiters = Waiters()
    assert await waiters.park("a", 0.01) is False
    assert waiters.count == 0
    waiters.wake("a")  # nothing parked: nothing to do


@pytest.mark.gen_test
async def test_a_busy_job_is_answered_once_per_interval_with_changes_batched() -> None:
    waiters = Waiters(min_interval=0.3)
    first = waiters.park("a", 30)
    waiters.wake("a")
    assert first.done()  # quiet until now: answered at once
    second = waiters.park("a", 30)
    waiters.wake("a")
    waiters.wake("a")
    assert not second.done()  # within the interval: held back
    third = waiters.park("a", 30)  # a viewer arriving meanwhile joins the same answer
    assert await asyncio.wait_for(second, 10) is True
    assert third.done()
    assert waiters.count == 0


@pytest.mark.gen_test
async def test_a_client_leaving_during_the_held_interval_leaves_nothing() -> None:
    waiters = Waiters(min_interval=0.2)
    waiters.park("a", 30)
    waiters.wake("a")  # answered: the interval starts
    gone = waiters.park("a", 30)
    waiters.wake("a")  # held back
    waiters.discard("a", gone)
    assert waiters.count == 0
    await asyncio.sleep(0.3)  # the held answer fires with nobody left to answer
    assert waiters.count == 0
    assert await gone is False
