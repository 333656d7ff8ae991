"""Reporting progress to a tornado_progress server from Python workers.

Standard library only: importing this package imports neither tornado, cairo nor msgpack, so a
worker's environment needs nothing but this package.

- `create_job(server, ...)` defines a job and answers its id and URLs (synchronous: the caller
  needs the id, so a failure raises `ProgressError` with the server's sentence).
- `Reporter(server, jobid, workid)` reports one worker's state. `update()` only stores the state
  (a lock and a tuple): a background daemon thread, one per process and server (sender.py),
  sends it over one kept-alive connection, at most one request per `min_interval` per
  reporter, always the newest state, the states of one job's reporters that are due together
  in one batch request, retrying with capped exponential backoff while the server is down.
  Nothing it does blocks or raises into the worker's code; trouble costs one (rate-limited)
  log line on the logger ``tornado_progress.client``. `close()`, `flush_all()` and interpreter
  exit flush the last states.
- `progress_for(server, jobid)` is a `Reporter` named after the MPI rank or host and process.

Modules: this one (the public names), `sender` (the thread and its batches), `wire` (the
server's address, the forms and answers, the connection), `retry` (backoff and the rate-limited
log), `tqdm` (a tqdm bar that reports).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlencode

from . import sender
from .sender import flush_all
from .wire import (
    State,
    Target,
    error_sentence,
    headers,
    normalise_server,
    number,
    parse_server,
)

RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")


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
            fields.append((name, number(value) if isinstance(value, float) else str(value)))
    connection = target.connection(timeout)
    try:
        connection.request("POST", target.path("create"), urlencode(fields).encode(),
                           headers(token))
        response = connection.getresponse()
        status, body = response.status, response.read()
    except (OSError, http.client.HTTPException) as error:
        raise ProgressError(f"cannot reach {target.base_url}: {error}") from error
    finally:
        connection.close()
    if status != 200:
        raise ProgressError(error_sentence(status, body), status)
    try:
        answer = json.loads(body)
        return Job(answer["jobid"], answer["show_url"], answer["render_url"],
                   answer["status_url"])
    except (ValueError, TypeError, KeyError) as error:
        raise ProgressError(f"{target.base_url} answered create with something that is "
                            f"not a job: {body[:200]!r}", status) from error


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
        self.headers = headers(token)
        self._reset()
        sender.register(self)

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
        sender.submit(self)

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
        sender.submit(self, urgent=True)
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
