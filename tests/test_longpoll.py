"""Waiters alone: per-job wakes, timeouts, discards, and pacing of a busy job's viewers."""

from __future__ import annotations

import asyncio

import pytest

from tornado_progress.longpoll import (
    MAX_PACING_S,
        MIN_SLICE,
    SLICE,
    VIEWER_COST_START_S,
    Waiters,
)


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


@pytest.mark.gen_test
async def test_a_wake_of_many_waiters_lets_the_loop_run_between_slices() -> None:
    waiters = Waiters()
    parked = [waiters.park("a", 30) for _ in range(2000)]
    seen: list[int] = []
    waiters.wake("a")
    # Scheduled right after the wake: it must run while part of the wake is still to come.
    asyncio.get_running_loop().call_soon(
        lambda: seen.append(sum(not future.done() for future in parked)))
    assert await asyncio.wait_for(asyncio.gather(*parked), 10) == [True] * 2000
    assert seen and seen[0] > 0
    assert waiters.count == 0


@pytest.mark.gen_test
async def test_waiters_leaving_or_arriving_during_a_spread_wake_stay_counted() -> None:
    waiters = Waiters()
    parked = [waiters.park("a", 30) for _ in range(2000)]
    waiters.wake("a")
    assert not parked[-1].done()  # the wake is still being spread
    waiters.discard("a", parked[-1])  # a client leaving mid-way
    waiters.discard("a", parked[-1])  # twice: counted once
    newcomer = waiters.park("a", 30)  # waits for the next change, not this one
    # The first slice answered at once, the one who left gone, the newcomer parked.
    assert waiters.count == 2000 - waiters.slice_size()
    assert await parked[-1] is False
    assert await asyncio.wait_for(asyncio.gather(*parked[:-1]), 10) == [True] * 1999
    assert not newcomer.done() and waiters.count == 1
    waiters.wake("a")
    assert await newcomer is True and waiters.count == 0


@pytest.mark.gen_test
async def test_release_all_answers_every_parked_waiter_now() -> None:
    waiters = Waiters(min_interval=30)
    spread = [waiters.park("a", 30) for _ in range(1000)]
    waiters.wake("a")  # being spread over slices
    held = waiters.park("a", 30)
    waiters.wake("a")  # held back by the pacing interval
    others = [waiters.park(f"job{index}", 30) for index in range(10)]
    waiters.release_all()
    assert all(future.done() and future.result() for future in (*spread, held, *others))
    assert waiters.count == 0
    for _ in range(10):  # loop turns, not time: the rest of the spread wake finds nobody
        await asyncio.sleep(0)
    assert waiters.count == 0
    waiters.release_all()  # nobody parked: nothing to do


class FakeCpu:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


@pytest.mark.gen_test
async def test_a_viewers_turn_is_learnt_from_whole_rounds() -> None:
    cpu = FakeCpu()
    waiters = Waiters(cpu_clock=cpu)
    assert waiters.viewer_cost == VIEWER_COST_START_S
    for _ in range(40):
        waiters.record_round(0.5, 1000)  # 500 us a viewer
    assert abs(waiters.viewer_cost - 0.0005) < 0.00001
    # A round is timed from its wake to the turn after its last slice, when its last answers
    # are written: a loop held up meanwhile makes the viewers' turns dearer.
    waiters.viewer_cost = 0.004 / MIN_SLICE  # 250 us a turn: slices of MIN_SLICE waiters
    parked = [waiters.park("job", 30) for _ in range(3 * MIN_SLICE)]
    loop = asyncio.get_running_loop()

    def busy() -> None:  # 30 ms of the loop's CPU, before the second slice
        cpu.seconds += 0.03

    loop.call_soon(busy)
    waiters.wake("job")
    await asyncio.gather(*parked)
    await asyncio.sleep(0)
    # 30 ms over 48 viewers: 625 us each, a quarter of the way from 250 us: about 344 us.
    assert 0.0003 < waiters.viewer_cost < 0.0005


class LoopCpu:
    """The loop thread's CPU clock as a test wants it: running with the loop's clock while
    `busy` (every moment spent working), standing still otherwise, plus `extra` seconds."""

    def __init__(self) -> None:
        self.busy = True
        self.extra = 0.0
        self._last = asyncio.get_running_loop().time()
        self._seconds = 0.0

    def __call__(self) -> float:
        now = asyncio.get_running_loop().time()
        if self.busy:
            self._seconds += now - self._last
        self._last = now
        return self._seconds + self.extra


async def dear_round_then_a_change(waiters: Waiters, cpu: LoopCpu) -> float:
    """A round of 400 viewers that costs the loop 0.4 s, a viewer back behind it, and how long
    from the round's end until that viewer is answered."""
    loop = asyncio.get_running_loop()
    many = [waiters.park("many", 30) for _ in range(400)]

    def dear() -> None:
        cpu.extra += 0.4

    loop.call_soon(dear)
    waiters.wake("many")
    behind = waiters.park("many", 30)  # during the round: waits for the pause's end
    waiters.wake("many")
    await asyncio.gather(*many)
    await asyncio.sleep(0)  # the round's end
    ended = loop.time()
    assert waiters.held_back("many") and not behind.done()
    await behind
    return loop.time() - ended


@pytest.mark.gen_test
async def test_a_dear_round_is_followed_by_a_pause_that_keeps_it_to_its_share() -> None:
    cpu = LoopCpu()  # the rest of the server keeps the loop busy
    waiters = Waiters(min_interval=0.01, viewer_share=0.5, cpu_clock=cpu)
    # Half the loop for viewers: a pause as long as the round, 0.4 s.
    assert 0.35 < await dear_round_then_a_change(waiters, cpu) < 0.6
    assert waiters.pause(0.4) == pytest.approx(0.4)
    assert waiters.pause(100.0) == MAX_PACING_S  # never longer


@pytest.mark.gen_test
async def test_a_pause_ends_early_when_the_rest_leaves_the_loop_idle() -> None:
    cpu = LoopCpu()
    cpu.busy = False  # nobody else wants the loop
    waiters = Waiters(min_interval=0.01, viewer_share=0.5, cpu_clock=cpu)
    assert await dear_round_then_a_change(waiters, cpu) < 0.1
    # A cheap round still waits for min_interval after it began.
    waiters = Waiters(min_interval=0.2, viewer_share=0.5, cpu_clock=cpu)
    first = waiters.park("few", 30)
    waiters.wake("few")
    await first
    began = asyncio.get_running_loop().time()
    second = waiters.park("few", 30)
    waiters.wake("few")
    await second
    assert asyncio.get_running_loop().time() - began > 0.15


def test_a_slice_holds_a_few_milliseconds_of_viewers_turns() -> None:
    waiters = Waiters()
    waiters.viewer_cost = 0.0001  # 100 us a viewer's turn: 40 of them in 4 ms
    assert waiters.slice_size() == 40
    waiters.viewer_cost = 1e-7
    assert waiters.slice_size() == SLICE
    waiters.viewer_cost = 0.01
    assert waiters.slice_size() == MIN_SLICE


@pytest.mark.gen_test
async def test_once_released_for_a_shutdown_a_new_poll_is_answered_at_once() -> None:
    waiters = Waiters(min_interval=30)
    waiters.release_all()
    assert await asyncio.wait_for(waiters.park("a", 30), 1) is True
    assert waiters.count == 0


@pytest.mark.gen_test
async def test_a_viewer_parks_unless_its_answer_is_due() -> None:
    waiters = Waiters(min_interval=30)
    assert waiters.park_unless_due("a", behind=True, timeout=30) is None  # quiet job: now
    assert waiters.park_unless_due("a", behind=False, timeout=0) is None  # no time to wait
    seen_it = waiters.park_unless_due("a", behind=False, timeout=30)
    assert seen_it is not None and not seen_it.done()
    waiters.wake("a")  # answered: the job is paced from now on
    assert await seen_it is True
    behind = waiters.park_unless_due("a", behind=True, timeout=30)  # held back: waits
    assert behind is not None and not behind.done()
    waiters.release_all()
    assert await behind is True
