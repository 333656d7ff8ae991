"""The in-memory progress model: jobs, their workers, versions, expiry and limits.

Nothing here knows about Tornado or HTTP, so the rules of the contract (docs/API.md) that
concern state can be tested alone, with an injected clock. The web layer calls `Store`; `Store`
tells whoever listens (the long-poll waiters) which job changed, and nothing more.

Hot path: `Store.update` is a dict lookup, a tuple build and a dict re-insert. Workers are
immutable `Worker` tuples, so the snapshot writer can copy a job's worker list by reference and
pack it in another thread while updates go on.
"""

from __future__ import annotations

import heapq
import hmac
import math
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .limits import Limits, NewJobRate

ID_MAX_CHARS = 256
KEY_MIN_CHARS = 8
DESC_MAX_CHARS = 1024
# Smoothing time constant of a worker's rate: a worker's speed is judged over about this long.
RATE_TIME_CONSTANT_S = 30.0

Number = int | float


class ModelError(Exception):
    """A domain error whose message is one plain sentence for the client."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameter(ModelError):
    status = 400


class UnknownJob(ModelError):
    status = 404

    def __init__(self, jobid: str) -> None:
        super().__init__(f"no job with jobid {jobid!r}")


class Forbidden(ModelError):
    """A write to a job that its key protects, or a new job without the key the server
    requires."""

    status = 403


class LimitReached(ModelError):
    """A limit that protects the server; `status` is 413 or 429."""

    def __init__(self, message: str, status: int = 429) -> None:
        super().__init__(message)
        self.status = status


class Worker(NamedTuple):
    """One worker's last report. Immutable: an update replaces the tuple."""

    workid: str
    current: Number
    total: Number
    desc: str
    ok: bool
    updated: float
    version: int
    rate: float | None  # things per second, smoothed over about RATE_TIME_CONSTANT_S

    @property
    def running(self) -> bool:
        """Neither failed nor done: a worker that should still be reporting."""
        return self.ok and self.fraction < 1.0

    @property
    def fraction(self) -> float:
        """Progress from 0 to 1; `current > total` counts as done, as the contract draws it."""
        if self.current >= self.total:
            return 1.0 if self.current > 0 or self.total > 0 else 0.0
        return self.current / self.total


def id_key(identifier: str) -> str:
    """The key an id is stored under: a space and a `+` are the same character in an id."""
    return identifier.replace("+", " ")


def smoothed_rate(previous: Worker | None, current: Number, now: float) -> float | None:
    """Things per second, an exponential moving average over recent updates."""
    if previous is None or current < previous.current:
        return None  # new worker, or one that started again: no speed known yet
    elapsed = now - previous.updated
    if elapsed <= 0:
        return previous.rate
    instant = (current - previous.current) / elapsed
    if previous.rate is not None:
        weight = 1.0 - math.exp(-elapsed / RATE_TIME_CONSTANT_S)
        instant = previous.rate + weight * (instant - previous.rate)
    # Finite inputs near the float limit can still overflow: no speed beats a wrong one.
    return instant if math.isfinite(instant) else None


class Job:
    """A job and its workers, kept in the order they last changed (oldest change first)."""

    __slots__ = ("created", "desc", "expected", "generation", "jobid", "keep_seconds", "key",
                 "metrics", "notify", "updated", "version", "workers", "write_key")

    def __init__(self, jobid: str, desc: str, now: float, version: int,
                 write_key: str | None = None, keep_seconds: float | None = None,
                 expected: int | None = None, metrics: bool = False,
                 notify: str | None = None) -> None:
        self.jobid = jobid
        # The secret that update, delete and a re-create of this job must carry; None: open.
        self.write_key = write_key
        # How long the job is kept after its last change (create's maxage); None: the
        # server's --keep-days.
        self.keep_seconds = keep_seconds
        # How many workers the job expects (create's workers); None: those that reported.
        self.expected = expected
        # Whether `metrics` shows this job (create's metrics=1), and where its news is POSTed
        # (create's notify): both chosen by whoever created it.
        self.metrics = metrics
        self.notify = notify
        self.key = id_key(jobid)
        self.desc = desc
        self.created = now
        self.updated = now
        self.version = version
        # The version at which this incarnation of the job was created: a poll from before it
        # cannot be answered with a delta.
        self.generation = version
        self.workers: dict[str, Worker] = {}

    def changed_since(self, since: int, most: int | None = None) -> list[Worker] | None:
        """The workers changed after version `since`, newest first; None when only the whole
        job will do: a client from before this generation, or from a server that ran ahead, or
        a delta of more than `most` workers (by default: no smaller than the whole). The walk
        stops there, so its cost is bounded by `most`."""
        if since < self.generation or since > self.version:
            return None
        most = len(self.workers) - 1 if most is None else min(most, len(self.workers) - 1)
        changed: list[Worker] = []
        for worker in reversed(self.workers.values()):
            if worker.version <= since:
                break
            if len(changed) >= most:
                return None
            changed.append(worker)
        return changed

    def view(self) -> JobView:
        """An immutable copy, cheap to take (workers are shared tuples), that another thread
        may read while the job changes."""
        return JobView(self.jobid, self.desc, self.version, self.generation, self.created,
                       self.updated, tuple(self.workers.values()), self.expected)


class JobView(NamedTuple):
    """A job's fields and workers (in last-change order) at one version."""

    jobid: str
    desc: str
    version: int
    generation: int
    created: float
    updated: float
    workers: tuple[Worker, ...]
    expected: int | None = None


class Store:
    """Every job, keyed by `id_key(jobid)`, with one version counter shared by all jobs.

    Sharing one counter makes a re-created job's version greater than any it had before, and
    starting it at the clock in microseconds makes versions keep rising across a restart that
    lost the last snapshot interval.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self.on_change = on_change or (lambda key: None)
        self.jobs: dict[str, Job] = {}
        self.version = int(clock() * 1_000_000)
        self.worker_count = 0
        self.new_job_rate = NewJobRate(self.limits.new_jobs_per_minute)

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def keep_seconds(self, job: Job) -> float:
        """How long `job` is kept after its last change."""
        return self.limits.keep_seconds if job.keep_seconds is None else job.keep_seconds

    def _expired(self, job: Job, now: float) -> bool:
        return now - job.updated > self.keep_seconds(job)

    def _live(self, key: str, now: float | None = None) -> Job | None:
        job = self.jobs.get(key)
        if job is not None and self._expired(job, self.clock() if now is None else now):
            self._drop(key)
            return None
        return job

    def _drop(self, key: str) -> None:
        job = self.jobs.pop(key)
        self.worker_count -= len(job.workers)
        self.version += 1  # a deletion is a change too: the snapshot must notice it
        self.on_change(key)

    def _check_new_job(self, key: str, write_key: str | None, client: str, now: float) -> None:
        """Everything a new job must pass, checked before anything changes."""
        if write_key is None and self.limits.require_key:
            raise Forbidden("this server requires a key for every new job (option --require-key): "
                            f"add key=<{KEY_MIN_CHARS} to {ID_MAX_CHARS} characters of your "
                            "choice>")
        if key not in self.jobs and len(self.jobs) >= self.limits.max_jobs:
            self.sweep()
            if len(self.jobs) >= self.limits.max_jobs:
                raise LimitReached(
                    f"the server holds its limit of {self.limits.max_jobs} jobs "
                    "(option --max-jobs); delete a job or wait for old ones to expire")
        if not self.new_job_rate.take(client, now):
            raise LimitReached(
                f"{client or 'this client'} has made {self.limits.new_jobs_per_minute} new jobs "
                "in the last minute, the limit per address (option --new-jobs-per-minute); "
                "try again in a few seconds")

    @staticmethod
    def _check_key(job: Job, write_key: str | None, action: str) -> None:
        """A protected job changes only for a request that carries its key."""
        if job.write_key is not None and not (
                write_key is not None and hmac.compare_digest(
                    job.write_key.encode(), write_key.encode())):
            given = "a different key" if write_key is not None else "no key"
            raise Forbidden(f"job {job.jobid!r} is protected by a key and this {action} "
                            f"carries {given}; send the key the job was created with")

    def _check_room_for_worker(self, jobid: str, job: Job | None) -> None:
        if job is not None and len(job.workers) >= self.limits.max_workers_per_job:
            raise LimitReached(
                f"job {jobid!r} holds its limit of {self.limits.max_workers_per_job} workers"
                " (option --max-workers-per-job)")
        if self.worker_count >= self.limits.max_workers:
            raise LimitReached(
                f"the server holds its limit of {self.limits.max_workers} workers in all "
                "(option --max-workers); delete a job or wait for old ones to expire")

    def get(self, jobid: str) -> Job:
        """The live job named `jobid`; an expired one is gone from the moment it expires."""
        job = self._live(id_key(jobid))
        if job is None:
            raise UnknownJob(jobid)
        return job

    def find(self, jobid: str) -> Job | None:
        return self._live(id_key(jobid))

    def create(self, jobid: str, desc: str, write_key: str | None = None,
               client: str = "", keep_seconds: float | None = None,
               expected: int | None = None, metrics: bool = False,
               notify: str | None = None) -> Job:
        """Defines a job, replacing (and emptying) one of the same id: with the old one's key,
        if it had one. `keep_seconds` (capped by the limits), `expected` workers, `metrics`
        and `notify` are the new job's own."""
        if keep_seconds is not None:
            keep_seconds = min(keep_seconds, self.limits.max_keep_seconds)
        if expected is not None and not 1 <= expected <= self.limits.max_workers_per_job:
            raise BadParameter(f"workers must be an integer from 1 to "
                               f"{self.limits.max_workers_per_job} (option "
                               f"--max-workers-per-job), got {expected}")
        key = id_key(jobid)
        now = self.clock()
        old = self._live(key, now)
        if old is None:
            self._check_new_job(key, write_key, client, now)
        else:
            self._check_key(old, write_key, "create")
            if old.write_key is None and write_key is not None:
                # Else anyone could lock the owner of an open job out of it.
                raise Forbidden(f"job {jobid!r} exists without a key, and a key protects only a "
                                "new job: delete the job first, or use another jobid")
            self.worker_count -= len(old.workers)
        job = Job(jobid, desc, now, self._next_version(), write_key, keep_seconds, expected,
                  metrics, notify)
        self.jobs[key] = job
        self.on_change(key)
        return job

    def update(self, jobid: str, workid: str, current: Number, total: Number, desc: str,
               ok: bool, write_key: str | None = None, client: str = "") -> Worker:
        """Records a worker's state, creating its job if there is none: updates may arrive
        before the create, or after a crash lost the job. The update that creates a job may
        protect it with `write_key`; later ones must carry that key."""
        key = id_key(jobid)
        work_key = id_key(workid)
        now = self.clock()
        job = self._live(key, now)
        if job is not None and job.write_key is not None:
            self._check_key(job, write_key, "update")
        previous = None if job is None else job.workers.pop(work_key, None)
        if previous is None:
            # Every check before anything changes: a refused update leaves no empty job behind
            # (and spends none of the client's allowance of new jobs).
            self._check_room_for_worker(jobid, job)
            if job is None:
                self._check_new_job(key, write_key, client, now)
            self.worker_count += 1
        else:
            workid = previous.workid  # keep the spelling the worker first reported with
        if job is None:
            job = Job(jobid, "", now, self._next_version(), write_key)
            self.jobs[key] = job
        version = self._next_version()
        worker = Worker(workid, current, total, desc, ok, now, version,
                        smoothed_rate(previous, current, now))
        # Re-inserting keeps `job.workers` ordered by last change, which makes a poll delta a
        # walk from the end instead of a scan of every worker.
        job.workers[work_key] = worker
        job.version = version
        job.updated = now
        self.on_change(key)
        return worker

    def delete(self, jobid: str, write_key: str | None = None) -> None:
        key = id_key(jobid)
        job = self._live(key)
        if job is None:
            raise UnknownJob(jobid)
        self._check_key(job, write_key, "delete")
        self._drop(key)

    def recent(self, most: int) -> list[Job]:
        """The `most` live jobs changed last, the latest first."""
        self.sweep()
        return heapq.nlargest(most, self.jobs.values(), key=lambda job: job.updated)

    def sweep(self) -> list[str]:
        """Drops every expired job; returns their keys."""
        now = self.clock()
        expired = [key for key, job in self.jobs.items() if self._expired(job, now)]
        for key in expired:
            self._drop(key)
        return expired

    def load(self, jobs: Iterable[Job], version: int) -> None:
        """Replaces the state with jobs read from a snapshot, dropping any that expired since."""
        self.jobs = {}
        self.worker_count = 0
        now = self.clock()
        for job in jobs:
            if not self._expired(job, now):
                self.jobs[job.key] = job
                self.worker_count += len(job.workers)
        self.version = max(self.version, version)
