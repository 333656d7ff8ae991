"""The sender: one daemon thread per process and server, which sends the states of every
`Reporter` of that server over one kept-alive connection.

Reporters wait in a heap ordered by the time they are due: at once for a new state, else at the
end of their interval (rounded up to a sixteenth of it, so that reporters answered at about the
same time fall due together) or of a backoff. When some are due the thread takes them all (a
round) and sends each job's states in one request, `POST /progress/updates?jobid=J`, one
form-encoded line per reporter (the query's jobid routes it behind nginx), split only past
`BATCH_MAX_BYTES` or `BATCH_MAX_LINES`. A job with a single due reporter sends its state alone
to `/progress/update`. The answers settle each state: recorded (2xx, or a version line of a
batch): sent, the next request waits the interval; refused (a 4xx, or an error line of a
batch): dropped and logged (rate-limited), as sending it again cannot help; 429, 5xx or no
answer: every state of the request kept and sent again after a backoff (or Retry-After), and
while the server cannot be reached no request goes but a flush's. A batch too large for the
server (413) is split; a server without `updates` (404 or 405, or a 200 that is not one JSON
line per update) gets one update per request from then on.

Nothing here blocks or raises into a worker, which only stores a state and wakes the thread.
Interpreter exit, and the end of a forked `multiprocessing` child, flush what is pending; a
forked child starts a sender of its own.
"""

from __future__ import annotations

import atexit
import heapq
import http.client
import itertools
import json
import logging
import math
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from .retry import LogLimiter, backoff, log, retry_after
from .wire import KeptAlive, State, Target, error_sentence, form, line_answers

if TYPE_CHECKING:
    from . import Reporter

REQUEST_TIMEOUT_S = 10.0  # connect and read timeout of one request of the sender
EXIT_FLUSH_S = 5.0  # what interpreter exit waits, in all, for the last states to go out
BATCH_MAX_BYTES = 32 * 1024  # a batch's body: half the server's default --max-request-bytes
BATCH_MAX_LINES = 1000
ALIGN_STEPS = 16  # a reporter's next request waits its interval, rounded up to 1/16 of it


@dataclass
class _Item:
    """One reporter's state in a request."""

    reporter: Reporter
    state: State
    urgent: bool  # a flush waits for it
    line: bytes  # the state as a form: a request's body, or a line of a batch


def next_slot(now: float, interval: float) -> float:
    """When a reporter answered at `now` may send again: `interval` later, rounded up to a
    multiple of 1/ALIGN_STEPS of it, so that reporters answered at about the same time (in
    several requests of a round, say) fall due at the same moment and share a batch."""
    if interval <= 0:
        return now
    step = interval / ALIGN_STEPS
    return max(now + interval, math.ceil((now + interval) / step) * step)


class _Sender:
    """The thread that sends the states of every reporter of one server in one process."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._cond = threading.Condition(threading.Lock())
        self._incoming: list[Reporter] = []  # submitted since the thread last looked
        self._heap: list[tuple[float, int, Reporter]] = []  # (due, tie-breaker, reporter)
        self._order = itertools.count()
        self._connection = KeptAlive(target, REQUEST_TIMEOUT_S)
        self._down_failures = 0  # connection failures in a row: the server is down
        self._down_until = 0.0  # monotonic: no request before, while the server is down
        self._batch_bytes = BATCH_MAX_BYTES  # halved by each 413 to a batch
        self._batches = True  # False once the server showed it has no `updates`
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
            for request in self._requests(self._due()):
                try:
                    self._send(request)
                except Exception:  # a bug must not end the thread that every reporter uses
                    log.exception("tornado_progress.client: sending %d update(s) of job %r "
                                  "failed", len(request), request[0].reporter.jobid)
                    for item in request:
                        self._settle(item.reporter, drop=True)

    # -- when: the heap of reporters by due time ---------------------------------------------

    def _due(self) -> list[Reporter]:
        """Waits until some reporters are due (and the server is not known down), and answers
        them all: a round."""
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

    # -- what: a round's states as requests ----------------------------------------------------

    def _requests(self, due: list[Reporter]) -> list[list[_Item]]:
        """The round's pending states as requests: each job's (of one token) together, in as
        few batches as the size limits allow."""
        jobs: dict[tuple[str, str], list[_Item]] = {}
        for reporter in due:
            with reporter._lock:
                state, reporter._pending = reporter._pending, None
                urgent, reporter._urgent = reporter._urgent, False
            if state is None:
                self._settle(reporter)
                continue
            try:
                item = _Item(reporter, state, urgent, form(reporter.prefix, state))
            except Exception:  # a desc that is no text, say: that state cannot be sent
                log.exception("tornado_progress.client: the state %r of %r is no update",
                              state, reporter)
                self._settle(reporter, drop=True)
                continue
            key = (reporter.jobid, reporter.headers.get("Authorization", ""))
            jobs.setdefault(key, []).append(item)
        return [request for items in jobs.values() for request in self._split(items)]

    def _split(self, items: list[_Item]) -> list[list[_Item]]:
        if not self._batches:
            return [[item] for item in items]
        requests: list[list[_Item]] = []
        size = 0
        for item in items:
            if (not requests or size + len(item.line) > self._batch_bytes
                    or len(requests[-1]) >= BATCH_MAX_LINES):
                requests.append([])
                size = 0
            requests[-1].append(item)
            size += len(item.line) + 1
        return requests

    def _encode(self, request: list[_Item]) -> tuple[str, bytes]:
        """The path and body of a request: `update` for one state, else `updates?jobid=J`."""
        if len(request) == 1:
            return self.target.path("update"), request[0].line
        query = urlencode({"jobid": request[0].reporter.jobid})
        return f"{self.target.path('updates')}?{query}", b"\n".join(i.line for i in request)

    # -- sending and reading the answer --------------------------------------------------------

    def _send(self, request: list[_Item]) -> None:
        if time.monotonic() < self._down_until and not any(item.urgent for item in request):
            for item in request:  # an earlier request of this round found the server down
                self._put_back(item)
            return
        path, body = self._encode(request)
        try:
            status, wait, answer = self._connection.post(path, body,
                                                         request[0].reporter.headers)
        except (OSError, http.client.HTTPException) as error:
            self._unreachable(request, error)
            return
        self._reached()
        if len(request) == 1:
            self._answered(request[0], status, wait, answer)
        else:
            self._batch_answered(request, len(body), status, wait, answer)

    def _answered(self, item: _Item, status: int, wait: str | None, body: bytes) -> None:
        """The answer to one update."""
        if 200 <= status < 300:
            self._delivered(item.reporter)
        elif status == 429 or status >= 500:
            self._busy([item], status, wait, body)
        else:  # a bad parameter, a wrong key or token: sending it again cannot help
            self._refused(item, error_sentence(status, body), status)

    def _batch_answered(self, request: list[_Item], size: int, status: int, wait: str | None,
                        body: bytes) -> None:
        """The answer to a batch: line by line, or one for all of it."""
        answers = line_answers(body, len(request)) if 200 <= status < 300 else None
        if answers is not None:
            for item, refusal in zip(request, answers, strict=True):
                if refusal is None:
                    self._delivered(item.reporter)
                elif refusal[1] == 429 or refusal[1] >= 500:  # a limit: this state, later
                    self._busy([item], refusal[1], None,
                               json.dumps({"error": refusal[0]}).encode())
                else:
                    self._refused(item, refusal[0])
        elif status == 429 or status >= 500:
            self._busy(request, status, wait, body)
        elif status in (404, 405) or 200 <= status < 300:
            self._batches = False
            _complain(logging.WARNING, f"no batches {self.target.base_url}",
                      "progress server %s answered updates with %d (%s); sending one update "
                      "per request", self.target.base_url, status, error_sentence(status, body))
            self._again(request)
        elif status == 413:
            self._batch_bytes = max(1, size // 2)
            self._again(request)
        else:  # the request itself refused (a token, say): each state as if sent alone
            sentence = error_sentence(status, body)
            for item in request:
                self._refused(item, sentence, status)

    def _delivered(self, reporter: Reporter) -> None:
        reporter._failures = 0
        reporter._next_send = next_slot(time.monotonic(), reporter.min_interval)
        self._settle(reporter)

    def _refused(self, item: _Item, sentence: str, status: int | None = None) -> None:
        reporter = item.reporter
        answer = sentence if status is None else f"{status}: {sentence}"
        _complain(logging.WARNING, f"refused {self.target.base_url} {status} {sentence}",
                  "progress server %s refused the update of job %r worker %r (%s); that state "
                  "is dropped", self.target.base_url, reporter.jobid, reporter.workid, answer)
        reporter._next_send = next_slot(time.monotonic(), reporter.min_interval)
        self._settle(reporter)

    def _busy(self, request: list[_Item], status: int, wait: str | None, body: bytes) -> None:
        """429 or 5xx: every state kept, each reporter retried after its own backoff."""
        now = time.monotonic()
        delay = 0.0
        for item in request:
            item.reporter._failures += 1
            delay = retry_after(wait, item.reporter._failures)
            item.reporter._retry_at = now + delay
            self._put_back(item)
        _complain(logging.WARNING, f"busy {self.target.base_url} {status}",
                  "progress server %s answered %d (%s); trying again in %.1f s",
                  self.target.base_url, status, error_sentence(status, body), delay)

    def _unreachable(self, request: list[_Item], error: BaseException) -> None:
        self._down_failures += 1
        delay = backoff(self._down_failures)
        with self._cond:
            self._down_until = time.monotonic() + delay
        _complain(logging.WARNING, f"down {self.target.base_url}",
                  "progress server %s cannot be reached (%s: %s); updates are kept and sent "
                  "when it answers (next try in %.1f s)", self.target.base_url,
                  type(error).__name__, error, delay)
        for item in request:
            self._put_back(item)
            if item.urgent:
                item.reporter._settled.set()  # a flush waits no longer for a server that is down

    def _reached(self) -> None:
        if self._down_failures:
            log.info("progress server %s answers again after %d failed attempts",
                     self.target.base_url, self._down_failures)
        self._down_failures = 0
        self._down_until = 0.0

    def _again(self, request: list[_Item]) -> None:
        """Sends the states again at once, in another shape: no failure, nobody waits longer."""
        for item in request:
            self._put_back(item, urgent=item.urgent)

    def _put_back(self, item: _Item, urgent: bool = False) -> None:
        """Queues the state again for a retry, unless a newer one has come meanwhile."""
        reporter = item.reporter
        with reporter._lock:
            if reporter._pending is None:
                reporter._pending = item.state
            reporter._urgent = reporter._urgent or urgent
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
