"""Per-job waiters for long polling, as in Tornado's chat demo but keyed by job and paced.

`Store` calls `Waiters.wake(key)` on every change; only that job's waiters are woken, and a job
with nobody watching costs one dict lookup. A waiter is a future plus its timeout timer: no
extra task per poll. A waiter whose client goes away is discarded at once, so parked polls never
pile up.

Pacing: a job's viewers are answered at once when the job has been quiet for `min_interval`
seconds, else at the end of that interval, with every change in between in one answer. A job
updated by a thousand workers would otherwise send each viewer a thousand answers a second,
more than any person can read, and each answer costs the server a whole request.

Bounded share: a job's interval also widens with its viewers, so that answering them takes at
most a share of the event loop's time. What a viewer costs is learnt from whole rounds
(`record_round`): the loop thread's CPU time from a wake to its last answer written, which
holds the answers, the viewers' next polls read and parked meanwhile, and whatever else the
loop had to do (time the system gave other processes is left out). The share
is work-conserving: viewers may take what the rest of the server leaves idle, less a margin
(MAX_SHARE at most), and never less than `viewer_share` (option --viewer-share), which is what
they are held to while workers' updates keep the loop busy. The loop's business is measured
over windows of about WINDOW_S, from its own thread's CPU time. Every viewer still gets every
change, in fewer, bigger answers, and the workers' updates keep the rest.

Spreading: a job with thousands of viewers is answered a slice of waiters at a time, each slice
in one go, with the next slice scheduled behind whatever else is ready, so that workers' updates
keep being served while ten thousand polls are answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

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
# follows new rounds.
VIEWER_COST_START_S = 300e-6
ROUND_WEIGHT = 0.25
# The most of the loop that viewers may take when the rest leaves it idle, the idle time kept
# free for whatever comes, and the window over which the loop's business is measured (s).
MAX_SHARE = 0.9
IDLE_MARGIN = 0.1
WINDOW_S = 1.0

Waiter = asyncio.Future[bool]


class Waiters:
    def __init__(self, min_interval: float = 0.0, viewer_share: float = 1.0,
                 cpu_clock: Callable[[], float] = time.thread_time) -> None:
        self.min_interval = min_interval
        self.viewer_share = viewer_share
        self.viewer_cost = VIEWER_COST_START_S
        self.share = viewer_share  # what viewers may take now: see measure_share
        self.cpu_clock = cpu_clock
        self._window: tuple[float, float] | None = None  # its start: loop time, CPU time
        self._viewer_seconds = 0.0  # rounds ended in the window
        self.closing = False  # stopping: every poll is answered at once
        self._by_job: dict[str, dict[Waiter, asyncio.TimerHandle]] = {}
        # Waiters of a wake still being spread over slices, of any job: they still count, and
        # a client leaving meanwhile is discarded from here.
        self._answering: dict[Waiter, asyncio.TimerHandle] = {}
        # When each recently answered job may be answered again: its last answer's time plus
        # the interval its viewers then called for.
        self._not_before: dict[str, float] = {}
        self._scheduled: dict[str, asyncio.TimerHandle] = {}
        self.count = 0

    def wake(self, key: str) -> None:
        """Job `key` changed: answer its waiters now, or at the end of its pacing interval."""
        if key not in self._by_job or key in self._scheduled:
            return
        loop = asyncio.get_running_loop()
        due = self._not_before.get(key, 0.0)
        now = loop.time()
        if now >= due:
            self._answer(key)
        else:
            self._scheduled[key] = loop.call_at(due, self._answer, key)

    def held_back(self, key: str) -> bool:
        """True while job `key` is inside the pacing interval of its last answer: a viewer that
        comes back with a cursor already behind then waits for the interval's end, with the
        others, instead of costing an answer of its own."""
        return asyncio.get_running_loop().time() < self._not_before.get(key, 0.0)

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

    def interval(self, viewers: int) -> float:
        """The pacing of a job with `viewers`: at least `min_interval`, and long enough that
        answering them takes at most `share` of the loop (MAX_PACING_S at most)."""
        shared = viewers * self.viewer_cost / self.share
        return min(max(self.min_interval, shared), max(self.min_interval, MAX_PACING_S))

    def record_round(self, seconds: float, viewers: int) -> None:
        """A round of `viewers` answers took `seconds` of the loop's CPU time from its wake to
        its last answer: it paces the rounds to come and sizes their slices."""
        self.viewer_cost += ROUND_WEIGHT * (seconds / viewers - self.viewer_cost)
        self._viewer_seconds += seconds

    def measure_share(self, now: float) -> None:
        """Once a window has passed: the share viewers may take from now on is what they took
        in it plus what the loop left idle, less IDLE_MARGIN, between `viewer_share` and
        MAX_SHARE."""
        cpu = self.cpu_clock()
        if self._window is None:
            self._window = (now, cpu)
            return
        started, cpu_started = self._window
        if now - started < WINDOW_S:
            return
        idle = max(0.0, 1.0 - (cpu - cpu_started) / (now - started))
        viewers = min(1.0, self._viewer_seconds / (now - started))
        self.share = max(self.viewer_share, min(MAX_SHARE, viewers + idle - IDLE_MARGIN))
        self._window, self._viewer_seconds = (now, cpu), 0.0

    def _answer(self, key: str) -> None:
        """Answers the waiters parked on job `key` so far; one parking from now on waits for
        the next change."""
        self._scheduled.pop(key, None)
        waiters = self._by_job.pop(key, None)
        if waiters is None:
            return
        now = asyncio.get_running_loop().time()
        self.measure_share(now)
        pacing = self.interval(len(waiters))
        if pacing > 0:
            if len(self._not_before) >= _LAST_WAKE_SWEEP:  # jobs long since quiet go
                self._not_before = {k: t for k, t in self._not_before.items() if t > now}
            self._not_before[key] = now + pacing
        self._answering.update(waiters)
        self._answer_slice(list(waiters), 0, self.cpu_clock())

    def slice_size(self) -> int:
        return max(MIN_SLICE, min(SLICE, int(SLICE_BUDGET_S / self.viewer_cost)))

    def _answer_slice(self, futures: list[Waiter], start: int, cpu_woken: float) -> None:
        """Answers a slice of `futures` from `start`, skipping any discarded meanwhile, and
        schedules the next slice behind the callbacks (and I/O) already waiting; after the
        last one, the round's end, behind its answers, which are written in the next turn."""
        end = start + self.slice_size()
        for future in futures[start:end]:
            self._resolve(self._answering, future, True)
        loop = asyncio.get_running_loop()
        if end < len(futures):
            loop.call_soon(self._answer_slice, futures, end, cpu_woken)
        else:
            loop.call_soon(self._round_done, cpu_woken, len(futures))

    def _round_done(self, cpu_woken: float, viewers: int) -> None:
        self.record_round(self.cpu_clock() - cpu_woken, viewers)

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
