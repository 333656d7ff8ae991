"""The sender: one daemon thread per process and server, which sends the states of every
`Reporter` of that server over one kept-alive connection.

Reporters wait in a heap ordered by the time they are due. The thread takes every reporter that
is due at once (`_Sender._due`) and posts each one's state to ``/progress/update``: 2xx sent,
4xx dropped and logged (rate-limited), 429 and 5xx retried after a backoff or the server's
Retry-After; while the server cannot be reached no request goes but a flush's. Nothing here
blocks or raises into a worker. Interpreter exit, and the end of a forked `multiprocessing`
child, flush what is pending; a forked child starts a sender of its own.
"""

from __future__ import annotations

import atexit
import heapq
import http.client
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING

from .retry import LogLimiter, backoff, log, retry_after
from .wire import KeptAlive, State, Target, error_sentence, form

if TYPE_CHECKING:
    from . import Reporter

REQUEST_TIMEOUT_S = 10.0  # connect and read timeout of one request of the sender
EXIT_FLUSH_S = 5.0  # what interpreter exit waits, in all, for the last states to go out


class _Sender:
    """The thread that sends the updates of every reporter of one server in one process, over
    one kept-alive connection. Reporters wait in a heap ordered by the time they are due."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._cond = threading.Condition(threading.Lock())
        self._incoming: list[Reporter] = []  # submitted since the thread last looked
        self._heap: list[tuple[float, int, Reporter]] = []  # (due, tie-breaker, reporter)
        self._order = itertools.count()
        self._connection = KeptAlive(target, REQUEST_TIMEOUT_S)
        self._down_failures = 0  # connection failures in a row: the server is down
        self._down_until = 0.0  # monotonic: no request before, while the server is down
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"tornado_progress.client {target.base_url}")

    def submit(self, reporter: Reporter, urgent: bool) -> None:
        with self._cond:
            self._incoming.append(reporter)
            if urgent:
                self._down_until = 0.0  # a flush tries once at once, even while down
            self._cond.notify()

    def _run(self) -> None:
        while True:
            for reporter in self._due():
                try:
                    self._send(reporter)
                except Exception:  # a bug must not end the thread that every reporter uses
                    log.exception("tornado_progress.client: sending %r failed", reporter)
                    self._settle(reporter, drop=True)

    def _due(self) -> list[Reporter]:
        """Waits until some reporters are due (and the server is not known down), and answers
        them all: a round, which a batch request could carry at once."""
        with self._cond:
            while True:
                now = time.monotonic()
                for reporter in self._incoming:
                    self._push(reporter, now)
                self._incoming.clear()
                wake = max(self._heap[0][0], self._down_until) if self._heap else None
                if wake is not None and wake <= now:
                    break
                self._cond.wait(None if wake is None else wake - now)
            due: list[Reporter] = []
            while self._heap and self._heap[0][0] <= now:
                when, _, reporter = heapq.heappop(self._heap)
                if reporter._queued_due == when:  # else an older entry, superseded
                    reporter._queued_due = None
                    due.append(reporter)
            return due

    def _push(self, reporter: Reporter, now: float) -> None:
        """Queues `reporter` for the time it is due (under `_cond`)."""
        due = now if reporter._urgent else max(now, reporter._next_send, reporter._retry_at)
        if reporter._queued_due is not None and reporter._queued_due <= due:
            return  # already queued for no later
        reporter._queued_due = due
        heapq.heappush(self._heap, (due, next(self._order), reporter))

    def _requeue(self, reporter: Reporter) -> None:
        with self._cond:
            self._push(reporter, time.monotonic())

    def _send(self, reporter: Reporter) -> None:
        with reporter._lock:
            state, reporter._pending = reporter._pending, None
            urgent, reporter._urgent = reporter._urgent, False
        if state is None:
            self._settle(reporter)
            return
        if time.monotonic() < self._down_until and not urgent:
            self._put_back(reporter, state)  # an earlier reporter of this round found it down
            return
        try:
            status, wait, body = self._connection.post(
                self.target.path("update"), form(reporter.prefix, state), reporter.headers)
        except (OSError, http.client.HTTPException) as error:
            self._unreachable(reporter, state, error, urgent)
            return
        self._reached()
        self._answered(reporter, state, status, wait, body)

    def _answered(self, reporter: Reporter, state: State, status: int,
                  wait: str | None, body: bytes) -> None:
        now = time.monotonic()
        if 200 <= status < 300:
            reporter._failures = 0
            reporter._next_send = now + reporter.min_interval
            self._settle(reporter)
        elif status == 429 or status >= 500:
            reporter._failures += 1
            delay = retry_after(wait, reporter._failures)
            reporter._retry_at = now + delay
            _complain(logging.WARNING, f"busy {self.target.base_url} {status}",
                      "progress server %s answered %d (%s); trying again in %.1f s",
                      self.target.base_url, status, error_sentence(status, body), delay)
            self._put_back(reporter, state)
        else:  # a bad parameter, a wrong key or token: sending it again cannot help
            sentence = error_sentence(status, body)
            _complain(logging.WARNING, f"refused {self.target.base_url} {status} {sentence}",
                      "progress server %s refused the update of job %r worker %r (%d: %s); "
                      "that state is dropped", self.target.base_url, reporter.jobid,
                      reporter.workid, status, sentence)
            reporter._next_send = now + reporter.min_interval
            self._settle(reporter)

    def _unreachable(self, reporter: Reporter, state: State, error: BaseException,
                     urgent: bool) -> None:
        self._down_failures += 1
        delay = backoff(self._down_failures)
        with self._cond:
            self._down_until = time.monotonic() + delay
        _complain(logging.WARNING, f"down {self.target.base_url}",
                  "progress server %s cannot be reached (%s: %s); updates are kept and sent "
                  "when it answers (next try in %.1f s)", self.target.base_url,
                  type(error).__name__, error, delay)
        self._put_back(reporter, state)
        if urgent:
            reporter._settled.set()  # a flush waits no longer for a server that is down

    def _reached(self) -> None:
        if self._down_failures:
            log.info("progress server %s answers again after %d failed attempts",
                     self.target.base_url, self._down_failures)
        self._down_failures = 0
        self._down_until = 0.0

    def _put_back(self, reporter: Reporter, state: State) -> None:
        """Queues the state again for a retry, unless a newer one has come meanwhile."""
        with reporter._lock:
            if reporter._pending is None:
                reporter._pending = state
        self._requeue(reporter)

    def _settle(self, reporter: Reporter, drop: bool = False) -> None:
        """After a request: queues the reporter again if a newer state came meanwhile, else
        marks it idle (which a flush waits for)."""
        with reporter._lock:
            if drop:
                reporter._pending = None
            if reporter._pending is None:
                reporter._scheduled = False
                reporter._settled.set()
                return
        self._requeue(reporter)


# Module state, per process: reset in a forked child, whose threads did not come along.
_senders: dict[Target, _Sender] = {}
_senders_lock = threading.Lock()
_reporters: weakref.WeakSet[Reporter] = weakref.WeakSet()
_complain = LogLimiter()
_exit_flush_pid = 0


def register(reporter: Reporter) -> None:
    """Makes `reporter` one that interpreter exit flushes."""
    _reporters.add(reporter)


def submit(reporter: Reporter, urgent: bool = False) -> None:
    """Tells the sender of the reporter's server that it has a state to send (`urgent`: at
    once, whatever its interval or a backoff says)."""
    sender = _senders.get(reporter.target)
    if sender is None:
        sender = _start_sender(reporter.target)
        if sender is None:
            with reporter._lock:
                reporter._pending = None
                reporter._scheduled = False
                reporter._settled.set()
            return
    sender.submit(reporter, urgent)


def _start_sender(target: Target) -> _Sender | None:
    with _senders_lock:
        sender = _senders.get(target)
        if sender is None:
            sender = _Sender(target)
            try:
                sender.thread.start()
            except RuntimeError as error:  # no more threads; the worker must go on anyway
                _complain(logging.WARNING, "thread", "tornado_progress.client cannot start "
                          "its sender thread (%s); updates are dropped", error)
                return None
            _senders[target] = sender
            _flush_at_multiprocessing_exit()
        return sender


def _flush_at_multiprocessing_exit() -> None:
    """A `multiprocessing` child started by fork ends with `os._exit()`, which skips atexit;
    its exit runs multiprocessing's finalizers instead, so the flush is registered there too
    (once per process; multiprocessing is not imported for it)."""
    global _exit_flush_pid
    util = sys.modules.get("multiprocessing.util")
    process = sys.modules.get("multiprocessing.process")
    if util is None or process is None or _exit_flush_pid == os.getpid():
        return
    if process.parent_process() is not None:
        _exit_flush_pid = os.getpid()
        util.Finalize(None, flush_all, exitpriority=0)


def flush_all(timeout: float = EXIT_FLUSH_S) -> bool:
    """Sends every reporter's pending state at once and waits up to `timeout` seconds in all;
    runs at interpreter exit. True when nothing is left to send."""
    waiting = [reporter for reporter in list(_reporters) if reporter._start_flush()]
    deadline = time.monotonic() + timeout
    for reporter in waiting:
        reporter._settled.wait(max(0.0, deadline - time.monotonic()))
    return not any(reporter._scheduled for reporter in waiting)


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: it starts its own sender, sends only
    its own updates (the parent sends what was pending), and never uses the parent's locks."""
    global _senders_lock, _complain
    _senders.clear()
    _senders_lock = threading.Lock()
    _complain = LogLimiter()
    for reporter in list(_reporters):
        closed = reporter._closed
        reporter._reset()
        reporter._closed = closed


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
