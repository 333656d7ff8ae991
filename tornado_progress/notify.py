"""Notifications: a job created with `notify=URL` has a small JSON document POSTed there when
it finishes, when one of its workers first fails, and when one goes stale, so that nobody has
to watch a page to learn that a night's run is over or stuck.

Failures are seen at the update that brings them; a finish and staleness at a tick every
couple of seconds (staleness comes with no request at all). Sending is asynchronous, with a
timeout and a few retries, and never delays an update; the queue of sends is bounded. Only URLs
that the operator allowed (option --notify-allow) are ever accepted, by `params.notify_url`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from . import views
from .bodies import BodyBuilder
from .model import Job, LimitReached, Store

log = logging.getLogger(__name__)

TICK_S = 2.0
TIMEOUT_S = 10.0
RETRY_DELAYS_S = (1.0, 4.0, 16.0)
MAX_IN_FLIGHT = 256  # sends (with their retries) at once; past it, news is dropped and logged


@dataclass
class Sent:
    """What a job's URL has been told, for one generation of the job."""

    generation: int
    finished: bool = False
    failed: set[str] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)
    dirty: bool = True  # changed since the last tick: its finish is worth checking


def sentence(event: str, job: Job, summary: dict[str, Any] | None, workid: str | None) -> str:
    name = job.desc or job.jobid
    if event == "job_finished" and summary is not None:
        return (f"Job {name!r} finished: {summary['done']} done, {summary['failed']} failed "
                f"of {summary['workers']} workers.")
    what = "failed" if event == "worker_failed" else "went stale (no report for a while)"
    return f"Worker {workid!r} of job {name!r} {what}."


class Notifier:
    def __init__(self, store: Store, bodies: BodyBuilder, tick_s: float = TICK_S,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS_S) -> None:
        self.store = store
        # Summaries come from where the pages' come from: a big job's off the event loop.
        self.bodies = bodies
        self.stale_after = bodies.stale_after
        self.tick_s = tick_s
        self.retry_delays = retry_delays
        self.sent: dict[str, Sent] = {}
        self.in_flight: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.dropped = 0

    def changed(self, key: str) -> None:
        """The store's change hook: a failure is told at once, a finish at the next tick."""
        job = self.store.jobs.get(key)
        if job is None or job.notify is None:
            self.sent.pop(key, None)
            return
        sent = self.sent.get(key)
        if sent is None or sent.generation != job.generation:
            sent = self.sent[key] = Sent(job.generation)
        sent.dirty = True
        newest = next(reversed(job.workers.values()), None)
        if newest is not None and not newest.ok and newest.workid not in sent.failed:
            sent.failed.add(newest.workid)
            self.send(job, "worker_failed", newest.workid, views.worker_json(
                newest, self.store.clock(), self.stale_after))

    async def run(self) -> None:
        """Ticks until cancelled: finishes and stale workers."""
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                await self.tick()
            except Exception:  # one bad tick must not end the notifications
                log.exception("notification tick failed")

    async def tick(self) -> None:
        now = self.store.clock()
        for key, sent in list(self.sent.items()):
            job = self.store.jobs.get(key)
            if job is None or job.notify is None or job.generation != sent.generation:
                continue  # gone or re-created: the hook starts it again at its next change
            self.check_stale(job, sent, now)
            if sent.dirty:
                sent.dirty = False
                await self.check_finished(job, sent, now)

    def check_stale(self, job: Job, sent: Sent, now: float) -> None:
        """Workers are kept oldest change first: the walk stops at the first recent one."""
        for worker in list(job.workers.values()):
            if now - worker.updated <= self.stale_after:
                break
            if worker.running and worker.workid not in sent.stale:
                sent.stale.add(worker.workid)
                self.send(job, "worker_stale", worker.workid,
                          views.worker_json(worker, now, self.stale_after))

    async def check_finished(self, job: Job, sent: Sent, now: float) -> None:
        try:
            summary = await self.bodies.summary(job, now)
        except LimitReached:  # the server is building many big answers: at the next tick
            sent.dirty = True
            return
        over = summary["workers"] > 0 and not (summary["running"] or summary["stale"]
                                               or summary["waiting"])
        if over and not sent.finished:
            self.send(job, "job_finished", None, None, summary)
        sent.finished = over  # running again (a re-run): its next finish is news again

    def send(self, job: Job, event: str, workid: str | None, worker: dict[str, Any] | None,
             summary: dict[str, Any] | None = None) -> None:
        assert job.notify is not None
        if len(self.in_flight) >= MAX_IN_FLIGHT:
            self.dropped += 1
            log.warning("notification %s of job %r dropped: %d sends under way already",
                        event, job.jobid, len(self.in_flight))
            return
        if summary is None and len(job.workers) <= self.bodies.inline_max_workers:
            summary = views.summary(job.view(), self.store.clock(), self.stale_after)
        document = {"event": event, "jobid": job.jobid, "desc": job.desc, "workid": workid,
                    "worker": worker, "summary": summary, "server_time": self.store.clock(),
                    "text": sentence(event, job, summary, workid)}
        task = asyncio.get_running_loop().create_task(self.deliver(job.notify, document))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def deliver(self, url: str, document: dict[str, Any]) -> None:
        """POSTs `document`, retrying a refused connection, a timeout, 429 or 5xx."""
        body = json.dumps(document, ensure_ascii=False).encode() + b"\n"
        request = HTTPRequest(url, method="POST", body=body, request_timeout=TIMEOUT_S,
                              connect_timeout=TIMEOUT_S, follow_redirects=False,
                              headers={"Content-Type": "application/json",
                                       "User-Agent": "tornado_progress"})
        for attempt, delay in enumerate((*self.retry_delays, None)):
            try:
                await AsyncHTTPClient().fetch(request)
                self.delivered += 1
                return
            except HTTPClientError as error:
                if error.code != 429 and error.code < 500:
                    problem = f"answered {error.code}"
                    break  # retrying cannot change the receiver's mind
                problem = f"answered {error.code}"
            except Exception as error:  # refused, reset, timed out, bad name
                problem = f"{type(error).__name__}: {error}"
            if delay is None:
                break
            log.info("notification to %s: %s (attempt %d); trying again in %g s", url,
                     problem, attempt + 1, delay)
            await asyncio.sleep(delay)
        self.dropped += 1
        log.warning("notification %s of job %r to %s not delivered: %s", document["event"],
                    document["jobid"], url, problem)
