"""Reporting progress to a tornado_progress server from Python workers.

Standard library only: importing this module imports neither tornado, cairo nor msgpack, so a
worker's environment needs nothing but this package.

- `create_job(server, ...)` defines a job and answers its id and URLs (synchronous: the caller
  needs the id, so a failure raises `ProgressError` with the server's sentence).
- `Reporter(server, jobid, workid)` reports one worker's state. `update()` only stores the state
  (a lock and a tuple): a background daemon thread, one per process and server, sends it over
  one kept-alive connection, at most one request per `min_interval` per reporter, always the
  newest state, retrying with capped exponential backoff while the server is down. Nothing it
  does blocks or raises into the worker's code; trouble costs one (rate-limited) log line on
  the logger ``tornado_progress.client``. `close()` and interpreter exit flush the last state.
- `progress_for(server, jobid)` is a `Reporter` named after the MPI rank or host and process.

The sender posts one form-encoded update per request to ``/progress/update``; its loop takes
every reporter that is due at once (`_Sender._due`), so a batch endpoint can later replace the
per-reporter requests of one round.
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
import socket
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote_plus, urlencode, urlsplit

from tornado_progress import __version__

log = logging.getLogger("tornado_progress.client")

BACKOFF_FIRST_S = 0.5  # the first retry after a failure; doubled after each further one
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 300.0  # a server's Retry-After longer than this is cut to it
REQUEST_TIMEOUT_S = 10.0  # connect and read timeout of one request of the sender
LOG_EVERY_S = 60.0  # the same kind of trouble is logged at most once per this many seconds
EXIT_FLUSH_S = 5.0  # what interpreter exit waits, in all, for the last states to go out
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")
USER_AGENT = f"tornado_progress.client/{__version__}"

# A worker's state as `update()` stores it: current, total, desc, ok.
State = tuple[float, float, str, bool]


class ProgressError(Exception):
    """A request the caller waits for failed; the message is the server's sentence."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, None when the server was not reached


@dataclass(frozen=True)
class Job:
    """A job as `create_job` answers it."""

    jobid: str
    show_url: str
    render_url: str
    status_url: str


@dataclass(frozen=True)
class Target:
    """A server as the client reaches it: `http://host:8000` spelled any usual way."""

    scheme: str
    host: str
    port: int
    prefix: str  # a path in front of /progress/, "" for most servers

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.prefix}"

    def path(self, endpoint: str) -> str:
        return f"{self.prefix}/progress/{endpoint}"

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def parse_server(server: str) -> Target:
    """`http://host:8000`, with or without a trailing `/` or `/progress/` (or a path prefix in
    front of it, behind a proxy); a missing scheme means http. ValueError for anything else."""
    text = server.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValueError(f"server must be a URL like http://host:8000, got {server!r}")
    prefix = parts.path.rstrip("/")
    if prefix.endswith("/progress"):
        prefix = prefix[: -len("/progress")]
    return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80), prefix)


def normalise_server(server: str) -> str:
    """The base URL every spelling of `server` stands for, e.g. `http://host:8000`."""
    return parse_server(server).base_url


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _error_sentence(status: int, body: bytes) -> str:
    """The `error` sentence of a JSON error answer, else the start of whatever came."""
    try:
        sentence = json.loads(body)["error"]
        if isinstance(sentence, str):
            return sentence
    except (ValueError, TypeError, KeyError):
        pass
    text = body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {status}" + (f": {text}" if text else "")


def create_job(server: str, desc: str = "", jobid: str | None = None,
               maxage: float | None = None, workers: int | None = None,
               key: str | None = None, token: str | None = None,
               timeout: float = 10.0) -> Job:
    """Defines a job (replacing one of the same id) and answers its id and URLs; without
    `jobid` the server chooses one. Raises `ProgressError` when the server refuses (with its
    sentence) or cannot be reached."""
    target = parse_server(server)
    fields: list[tuple[str, str]] = [("desc", desc)]
    for name, value in (("jobid", jobid), ("maxage", maxage), ("workers", workers),
                        ("key", key)):
        if value is not None:
            fields.append((name, _number(value) if isinstance(value, float) else str(value)))
    connection = target.connection(timeout)
    try:
        connection.request("POST", target.path("create"), urlencode(fields).encode(),
                           _headers(token))
        response = connection.getresponse()
        status, body = response.status, response.read()
    except (OSError, http.client.HTTPException) as error:
        raise ProgressError(f"cannot reach {target.base_url}: {error}") from error
    finally:
        connection.close()
    if status != 200:
        raise ProgressError(_error_sentence(status, body), status)
    try:
        answer = json.loads(body)
        return Job(answer["jobid"], answer["show_url"], answer["render_url"],
                   answer["status_url"])
    except (ValueError, TypeError, KeyError) as error:
        raise ProgressError(f"{target.base_url} answered create with something that is "
                            f"not a job: {body[:200]!r}", status) from error


def _number(value: object) -> str:
    """A number as the server reads it: `7`, `2.5`, `1e+16`."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)  # numpy and other number types print themselves


def _form(prefix: str, state: State) -> bytes:
    current, total, desc, ok = state
    body = f"{prefix}&current={_number(current)}&total={_number(total)}&desc={quote_plus(desc)}"
    return (body if ok else body + "&ok=0").encode()


class _LogLimiter:
    """Logs the first line of each kind of trouble, then at most one per `LOG_EVERY_S`
    seconds, counting in it the lines skipped meanwhile."""

    MAX_KINDS = 1000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, level: int, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < LOG_EVERY_S:
                self._skipped[kind] = self._skipped.get(kind, 0) + 1
                return
            if len(self._last) >= self.MAX_KINDS:
                self._last.clear()
                self._skipped.clear()
            self._last[kind] = now
            skipped = self._skipped.pop(kind, 0)
        if skipped:
            message += " (and %d more like it in the last %d s)"
            args = (*args, skipped, int(LOG_EVERY_S))
        log.log(level, message, *args)


_complain = _LogLimiter()


def _backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` failed ones in a row (>= 1)."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures - 1, 16)))


def _retry_after(header: str | None, failures: int) -> float:
    """The server's Retry-After (seconds or an HTTP date) when it sent one, else backoff."""
    if header:
        try:
            seconds = float(header)
        except ValueError:
            from email.utils import parsedate_to_datetime
            try:
                seconds = parsedate_to_datetime(header).timestamp() - time.time()
            except (TypeError, ValueError):
                return _backoff(failures)
        if math.isfinite(seconds):
            return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)
    return _backoff(failures)


class Reporter:
    """Reports one worker's state to a server without ever slowing or failing the worker.

    `update()` stores the state; the process's sender thread for `server` sends it, at most
    once per `min_interval` seconds (the newest state each time), retrying while the server
    is down. `close()` (or leaving a `with` block, or interpreter exit) sends the last state at
    once. A `with` block left by an exception marks the worker failed, with the exception's
    class name as its text.
    """

    def __init__(self, server: str, jobid: str, workid: str, key: str | None = None,
                 token: str | None = None, min_interval: float = 1.0) -> None:
        if not min_interval >= 0:
            raise ValueError(f"min_interval must be a number >= 0, got {min_interval!r}")
        self.target = parse_server(server)
        self.jobid = jobid
        self.workid = workid
        self.min_interval = float(min_interval)
        fields = [("jobid", jobid), ("workid", workid)] + ([("key", key)] if key else [])
        self.prefix = urlencode(fields)  # the form fields every update of this worker sends
        self.headers = _headers(token)
        self._reset()
        _reporters.add(self)

    def _reset(self) -> None:
        """The state of a new reporter; also that of one a fork carried into a child."""
        self._lock = threading.Lock()
        self._last: State = (0, 0, "", True)  # the newest state given, sent or not
        self._pending: State | None = None  # the newest state not yet sent
        self._scheduled = False  # pending, or being sent: the sender knows this reporter
        self._closed = False
        # Read and written by the sender thread only, except that a flush sets _urgent:
        self._urgent = False  # send at once, whatever the interval or backoff says
        self._next_send = 0.0  # monotonic: the interval's earliest next request
        self._retry_at = 0.0  # monotonic: after an answer asking to wait (5xx, 429)
        self._failures = 0  # such answers in a row
        self._queued_due: float | None = None  # due time of the reporter's live heap entry
        self._settled = threading.Event()  # set when a flush has nothing more to wait for
        self._settled.set()

    def update(self, current: float, total: float, desc: str | None = None,
               ok: bool = True) -> None:
        """Sets this worker's state: `current` of `total` things done, `desc` its text (None
        keeps the text of the previous update), `ok` False for a failed worker. Cheap: the
        state is only stored; it never blocks or raises."""
        with self._lock:
            if self._closed:
                return
            state = (current, total, self._last[2] if desc is None else desc, ok)
            self._last = self._pending = state
            if self._scheduled:
                return  # the sender will send this newer state instead
            self._scheduled = True
            self._settled.clear()
        _submit(self)

    def fail(self, desc: str) -> None:
        """Marks this worker failed (a red bar) with `desc` as its text; the numbers stay."""
        current, total, _, _ = self._last
        self.update(current, total, desc, ok=False)

    def close(self, timeout: float = 5.0) -> bool:
        """Sends the last state at once and waits up to `timeout` seconds for it to go out.
        True when nothing is left to send (delivered, or refused by the server); False when
        the server could not be reached, then the state stays queued and the sender keeps
        trying while the process lives. Later updates are ignored. Never raises."""
        with self._lock:
            self._closed = True
        return self.flush(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Sends the pending state at once (ignoring the interval and backoff) and waits up
        to `timeout` seconds; True when nothing is left to send."""
        if self._start_flush():
            self._settled.wait(timeout)
        with self._lock:
            return not self._scheduled

    def _start_flush(self) -> bool:
        """Asks the sender to send this reporter's pending state now; False if none."""
        with self._lock:
            if not self._scheduled:
                return False
            self._urgent = True
            self._settled.clear()
        _submit(self, urgent=True)
        return True

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc_type is not None:
            self.fail(exc_type.__name__)
        self.close()

    def __repr__(self) -> str:
        return (f"Reporter({self.target.base_url!r}, jobid={self.jobid!r}, "
                f"workid={self.workid!r})")


class _Sender:
    """The thread that sends the updates of every reporter of one server in one process, over
    one kept-alive connection. Reporters wait in a heap ordered by the time they are due."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._cond = threading.Condition(threading.Lock())
        self._incoming: list[Reporter] = []  # submitted since the thread last looked
        self._heap: list[tuple[float, int, Reporter]] = []  # (due, tie-breaker, reporter)
        self._order = itertools.count()
        self._connection: http.client.HTTPConnection | None = None
        self._connection_pid = 0
        self._connection_used = False  # has served a request: it may have gone stale since
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
            status, retry_after, body = self._post(reporter, state)
        except (OSError, http.client.HTTPException) as error:
            self._unreachable(reporter, state, error, urgent)
            return
        self._reached()
        self._answered(reporter, state, status, retry_after, body)

    def _answered(self, reporter: Reporter, state: State, status: int,
                  retry_after: str | None, body: bytes) -> None:
        now = time.monotonic()
        if 200 <= status < 300:
            reporter._failures = 0
            reporter._next_send = now + reporter.min_interval
            self._settle(reporter)
        elif status == 429 or status >= 500:
            reporter._failures += 1
            delay = _retry_after(retry_after, reporter._failures)
            reporter._retry_at = now + delay
            _complain(logging.WARNING, f"busy {self.target.base_url} {status}",
                      "progress server %s answered %d (%s); trying again in %.1f s",
                      self.target.base_url, status, _error_sentence(status, body), delay)
            self._put_back(reporter, state)
        else:  # a bad parameter, a wrong key or token: sending it again cannot help
            sentence = _error_sentence(status, body)
            _complain(logging.WARNING, f"refused {self.target.base_url} {status} {sentence}",
                      "progress server %s refused the update of job %r worker %r (%d: %s); "
                      "that state is dropped", self.target.base_url, reporter.jobid,
                      reporter.workid, status, sentence)
            reporter._next_send = now + reporter.min_interval
            self._settle(reporter)

    def _unreachable(self, reporter: Reporter, state: State, error: BaseException,
                     urgent: bool) -> None:
        self._down_failures += 1
        delay = _backoff(self._down_failures)
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

    def _post(self, reporter: Reporter, state: State) -> tuple[int, str | None, bytes]:
        """POSTs one update; a kept-alive connection the server has closed meanwhile is
        replaced once at once (an update can be sent twice: it sets a state)."""
        body = _form(reporter.prefix, state)
        for attempt in (1, 2):
            connection, reused = self._connect()
            try:
                connection.request("POST", self.target.path("update"), body, reporter.headers)
                response = connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as error:
                self._disconnect()
                stale = isinstance(error, (ConnectionError, http.client.BadStatusLine))
                if attempt == 1 and reused and stale:
                    continue
                raise
            self._connection_used = True
            if response.will_close:
                self._disconnect()
            return response.status, response.getheader("Retry-After"), answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> tuple[http.client.HTTPConnection, bool]:
        """The kept-alive connection, a new one after an error or in a forked child."""
        if self._connection is not None and self._connection_pid != os.getpid():
            self._connection = None  # the parent's socket: never write to it from here
        if self._connection is None:
            self._connection = self.target.connection(REQUEST_TIMEOUT_S)
            self._connection_pid = os.getpid()
            self._connection_used = False
        return self._connection, self._connection_used

    def _disconnect(self) -> None:
        if self._connection is not None:
            if self._connection_pid == os.getpid():
                self._connection.close()
            self._connection = None


# Module state, per process: reset in a forked child, whose threads did not come along.
_senders: dict[Target, _Sender] = {}
_senders_lock = threading.Lock()
_reporters: weakref.WeakSet[Reporter] = weakref.WeakSet()
_exit_flush_pid = 0


def _submit(reporter: Reporter, urgent: bool = False) -> None:
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
    _complain = _LogLimiter()
    for reporter in list(_reporters):
        closed = reporter._closed
        reporter._reset()
        reporter._closed = closed


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def default_workid() -> str:
    """The MPI rank when an MPI launcher or Slurm set one, else `host:pid`."""
    for name in RANK_VARIABLES:
        rank = os.environ.get(name, "").strip()
        if rank:
            return rank
    return f"{socket.gethostname()}:{os.getpid()}"


def progress_for(server: str, jobid: str, workid: str | None = None, *,
                 key: str | None = None, token: str | None = None,
                 min_interval: float = 1.0) -> Reporter:
    """A `Reporter` for a worker of a `multiprocessing` pool, `concurrent.futures` executor or
    MPI job: `workid` defaults to `default_workid()` (the rank, or `host:pid`)."""
    return Reporter(server, jobid, default_workid() if workid is None else workid, key=key,
                    token=token, min_interval=min_interval)


__all__ = [
    "Job", "ProgressError", "Reporter", "Target", "create_job", "default_workid", "flush_all",
    "normalise_server", "parse_server", "progress_for",
]
