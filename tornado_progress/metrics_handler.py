"""The `metrics` endpoint: what Prometheus scrapes (see metrics.py for what it holds)."""

from __future__ import annotations

import time

from . import metrics
from .handlers import ApiHandler


class MetricsHandler(ApiHandler):
    async def respond(self) -> None:
        self.store.sweep()  # count only the jobs that are still alive
        now = self.store.clock()
        jobs = [(job.jobid, job.updated, await self.bodies.summary(job, now))
                for job in list(self.store.jobs.values()) if job.metrics]
        figures = metrics.ServerFigures(
            uptime_s=time.monotonic() - self.started, jobs=len(self.store.jobs),
            workers=self.store.worker_count, waiters=self.waiters.count,
            snapshots=self.snapshotter.written, snapshot_failures=self.snapshotter.failures,
            snapshot_last_s=self.snapshotter.last_duration_s,
            last_snapshot=self.snapshotter.last_snapshot, cache_bytes=self.answers.bytes_used,
            cache_budget=self.answers.budget_bytes, renders=self.renderer.drawn,
            render_seconds=self.renderer.drawing_s)
        self.set_header("Content-Type", metrics.CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.finish(metrics.exposition(figures, self.counters, jobs))
