"""Per-job waiters for long polling, as in Tornado's chat demo but keyed by job and paced.

`Store` calls `Waiters.wake(key)` on every change; only that job's waiters are woken, and a job
with nobody watching costs one dict lookup. A waiter is a future plus its timeout timer: no
extra task per poll. A waiter whose client goes away is discarded at once, so parked polls never
pile up.

Pacing: a job's viewers are answered at once when the job has been quiet for `min_interval`
seconds, else at the end of that interval, with every change in between in one answer. A job
updated by a thousand workers would otherwise send each viewer a thousand answers a second,
more than any person can read, and each answer costs the server a whole request.

Bounded share: a round of answers (a wake, its slices, its last answer written) is followed by
a pause long enough that the round took at most `viewer_share` of the loop's time (option
--viewer-share), measured on that very round: the loop thread's CPU time over it, which holds
the answers, the viewers' next polls read and parked meanwhile, and whatever else the loop had
to do (time the system gave other processes is left out). So the more viewers, the rarer their
answers; changes meanwhile wait for the pause's end, in one answer. The pause is for the rest
of the server: it ends early when the rest leaves the loop idle (looked at every
PAUSE_CHECK_S), so viewers are held to their share only while workers' updates keep the loop
busy. Every viewer still gets every change, in fewer, bigger answers.

Spreading: a job with thousands of viewers is answered a slice of waiters at a time, each slice
in one go, with the next slice scheduled behind whatever else is ready, so that workers' updates
keep being served while ten thousand polls are answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

# Pacing records kept before the old ones are swept (jobs long since quiet).
_LAST_WAKE_SWEEP = 4096
# Waiters answered per turn of the event loop: each one's answer is written in the next turn,
# and its next poll read in the turns after, so a slice is sized to what viewers' turns are
# learnt to cost, for about SLICE_BUDGET_S of work, between MIN_SLICE and SLICE; workers'
# updates that arrive meanwhile wait for about one slice.
SLICE = 256
MIN_SLICE = 16
SLICE_BUDGET_S = 0.004
# The longest a job's viewers are paced, however many they are: polls time out after 25 s.
MAX_PACING_S = 10.0
# What one viewer's turn costs the loop (its answer, its next poll, and its part of what else
# the loop did meanwhile) until rounds have told (seconds), and how fast the learnt figure
# follows new rounds: it sizes the slices.
VIEWER_COST_START_S = 300e-6
ROUND_WEIGHT = 0.25
# How often a pause looks whether the rest of the server uses the loop (s), and below what
# share of the loop's time since the pause began it ends the pause.
PAUSE_CHECK_S = 0.01
IDLE_BUSY = 0.5

Waiter = asyncio.Future[bool]


@dataclass
class Pause:
    """The pause after a job's round: since when (by the loop's clock and its thread's CPU
    clock), the earliest it may end (min_interval after the round began), and when it ends
    anyway."""

    started: float
    cpu_started: float
    earliest: float
    due: float

    def over(self, now: float, cpu: float) -> bool:
        """Past its due time, or past its earliest with the loop mostly idle since it began."""
        if now >= self.due:
            return True
        return now >= self.earliest and now > self.started and \
            (cpu - self.cpu_started) / (now - self.started) < IDLE_BUSY

    def next_look(self, now: float) -> float:
        return min(self.due, max(self.earliest, now + PAUSE_CHECK_S))


@dataclass
class Round:
    """One wake of a job's waiters, answered slice by slice: when it started, by the loop's
    clock and its thread's CPU clock."""

    key: str
    waiters: list[Waiter]
    started: float
    cpu_started: float


class Waiters:
    def __init__(self, min_interval: float = 0.0, viewer_share: float = 1.0,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        self.min_interval = min_interval
        self.viewer_share = viewer_share
        self.viewer_cost = VIEWER_COST_START_S
        self.cpu_clock = cpu_clock
        self.closing = False  # stopping: every poll is answered at once
        self._by_job: dict[str, dict[Waiter, asyncio.TimerHandle]] = {}
        # Waiters of a wake still being spread over slices, of any job: they still count, and
        # a client leaving meanwhile is discarded from here.
        self._answering: dict[Waiter, asyncio.TimerHandle] = {}
        # Jobs whose round is under way, each with whether it changed meanwhile; and jobs in
        # the pause after their last round.
        self._in_round: dict[str, bool] = {}
        self._paused: dict[str, Pause] = {}
        self._scheduled: dict[str, asyncio.TimerHandle] = {}
        self.count = 0

    def wake(self, key: str) -> None:
        """Job `key` changed: answer its waiters now, or once its round and the pause after
        it are over."""
        if key not in self._by_job or key in self._scheduled:
            return
        if key in self._in_round:
            self._in_round[key] = True
            return
        self._end_pause(key)

    def _end_pause(self, key: str) -> None:
        """Answers job `key`'s waiters if its pause is over (or no longer needed), else looks
        again later."""
        self._scheduled.pop(key, None)
        pause = self._paused.get(key)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if pause is None or pause.over(now, self.cpu_clock()):
            self._answer(key)
        else:
            self._scheduled[key] = loop.call_at(pause.next_look(now), self._end_pause, key)

    def held_back(self, key: str) -> bool:
        """True while job `key`'s round of answers or the pause after it lasts: a viewer that
        comes back with a cursor already behind then waits for the pause's end, with the
        others, instead of costing an answer of its own."""
        pause = self._paused.get(key)
        return key in self._in_round or (
            pause is not None and asyncio.get_running_loop().time() < pause.due)

    def park_unless_due(self, key: str, behind: bool, timeout: float) -> Waiter | None:
        """A waiter for a viewer of job `key`: one that has seen its current version waits for
        the next change, and one `behind` it waits for the end of the pacing interval (with
        the others, in one answer) while the job is held back; None when an answer is due now
        (behind and not held back, or no time to wait)."""
        if timeout <= 0 or (behind and not self.held_back(key)):
            return None
        parked = self.park(key, timeout)
        if behind:
            self.wake(key)  # answered at the end of the pacing interval
        return parked

    def pause(self, seconds: float) -> float:
        """The pause after a round that took `seconds` of the loop, so that it took at most
        `viewer_share` of it (MAX_PACING_S at most)."""
        return min(MAX_PACING_S, seconds * (1.0 / self.viewer_share - 1.0))

    def record_round(self, seconds: float, viewers: int) -> None:
        """A round of `viewers` answers took `seconds` of the loop's CPU time from its wake to
        its last answer: it sizes the slices to come, and counts as viewers' time."""
        self.viewer_cost += ROUND_WEIGHT * (seconds / viewers - self.viewer_cost)

    def _answer(self, key: str) -> None:
        """Answers the waiters parked on job `key` so far; one parking from now on waits for
        the next change."""
        self._scheduled.pop(key, None)
        waiters = self._by_job.pop(key, None)
        if waiters is None:
            return
        now = asyncio.get_running_loop().time()
        self._paused.pop(key, None)
        self._in_round[key] = False
        self._answering.update(waiters)
        self._answer_slice(Round(key, list(waiters), now, self.cpu_clock()), 0)

    def slice_size(self) -> int:
        return max(MIN_SLICE, min(SLICE, int(SLICE_BUDGET_S / self.viewer_cost)))

    def _answer_slice(self, round_: Round, start: int) -> None:
        """Answers a slice of the round's waiters from `start`, skipping any discarded
        meanwhile, and schedules the next slice behind the callbacks (and I/O) already
        waiting; after the last one, the round's end, behind its answers, which are written in
        the next turn."""
        end = start + self.slice_size()
        for future in round_.waiters[start:end]:
            self._resolve(self._answering, future, True)
        loop = asyncio.get_running_loop()
        if end < len(round_.waiters):
            loop.call_soon(self._answer_slice, round_, end)
        else:
            loop.call_soon(self._round_done, round_)

    def _round_done(self, round_: Round) -> None:
        """The round's cost sets the job's pause; a change meanwhile is answered after it."""
        cpu = self.cpu_clock()
        seconds = cpu - round_.cpu_started
        self.record_round(seconds, len(round_.waiters))
        now = asyncio.get_running_loop().time()
        if len(self._paused) >= _LAST_WAKE_SWEEP:  # jobs long since quiet go
            self._paused = {k: p for k, p in self._paused.items() if p.due > now}
        self._paused[round_.key] = Pause(now, cpu,
                                         round_.started + self.min_interval,
                                         max(round_.started + self.min_interval,
                                             now + self.pause(seconds)))
        if self._in_round.pop(round_.key, False):
            self.wake(round_.key)

    def _resolve(self, waiters: dict[Waiter, asyncio.TimerHandle], future: Waiter,
                 result: bool) -> bool:
        """Forgets `future` from `waiters` and answers it; False if it was not there."""
        timer = waiters.pop(future, None)
        if timer is None:
            return False
        timer.cancel()
        self.count -= 1
        if not future.done():
            future.set_result(result)
        return True

    def release_all(self) -> None:
        """Answers every parked waiter of every job at once, paced or not: at shutdown, so
        that parked polls get the job's current state instead of a dropped connection. From
        then on a poll is answered at once too (a page polls again as soon as it is answered:
        the server must not wait for it while it stops)."""
        self.closing = True
        for timer in self._scheduled.values():
            timer.cancel()
        self._scheduled.clear()
        jobs, self._by_job = self._by_job, {}
        for waiters in (*jobs.values(), self._answering):
            for future in list(waiters):
                self._resolve(waiters, future, True)

    def park(self, key: str, timeout: float) -> Waiter:
        """A future that becomes True at the next change of job `key`, or False after `timeout`
        seconds or when discarded."""
        loop = asyncio.get_running_loop()
        future: Waiter = loop.create_future()
        if self.closing:
            future.set_result(True)
            return future
        timer = loop.call_later(timeout, self.discard, key, future)
        self._by_job.setdefault(key, {})[future] = timer
        self.count += 1
        return future

    def discard(self, key: str, future: Waiter) -> None:
        """Forgets a waiter that timed out or whose client left."""
        waiters = self._by_job.get(key)
        if waiters is None or not self._resolve(waiters, future, False):
            self._resolve(self._answering, future, False)
        elif not waiters:
            del self._by_job[key]
