"""`metrics`: the Prometheus text exposition of the server, and of each job created with
`metrics=1` (its summary counts and fraction), so that Grafana can chart a job and alert on it.

The hot path only adds to plain integers (`Counters`); the exposition is built at scrape time
by prometheus_client's writer, which gets the format's escaping right for any jobid.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "tornado_progress"
# A refusal's reason by its status, for the refusals counter's label.
REASONS = {400: "bad_parameter", 401: "unauthorized", 403: "forbidden", 404: "not_found",
           405: "method", 413: "too_large", 429: "limit", 503: "busy"}
JOB_STATES = ("running", "done", "failed", "stale", "waiting")


@dataclass
class Counters:
    """What the handlers count as they go: cheap to add to, read at scrape time."""

    updates: int = 0
    # (endpoint, status) -> refusals
    refused: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)

    def refusal(self, endpoint: str, status: int) -> None:
        self.refused[(endpoint, status)] += 1


@dataclass(frozen=True)
class ServerFigures:
    """The server's state at scrape time."""

    uptime_s: float
    jobs: int
    workers: int
    waiters: int
    snapshots: int
    snapshot_failures: int
    snapshot_last_s: float | None
    last_snapshot: float | None
    cache_bytes: int
    cache_budget: int
    renders: int
    render_seconds: float


class _Families:
    """What generate_latest wants: something with collect()."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _gauge(name: str, documentation: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> Metric:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def server_families(figures: ServerFigures, counters: Counters) -> Iterator[Metric]:
    yield from _gauge("uptime_seconds", "Seconds since the server started.", figures.uptime_s)
    yield from _gauge("jobs", "Jobs held.", figures.jobs)
    yield from _gauge("workers", "Workers in all jobs.", figures.workers)
    yield from _gauge("waiters", "Long polls parked.", figures.waiters)
    yield _counter("updates", "Worker updates recorded.", counters.updates)
    refused = CounterMetricFamily(f"{PREFIX}_refused", "Requests refused, by reason.",
                                  labels=("endpoint", "status", "reason"))
    for (endpoint, status), count in sorted(counters.refused.items()):
        refused.add_metric((endpoint, str(status), REASONS.get(status, "error")), count)
    yield refused
    yield _counter("snapshots", "Snapshots written.", figures.snapshots)
    yield _counter("snapshot_failures", "Snapshots that failed to be written.",
                   figures.snapshot_failures)
    yield from _gauge("snapshot_last_duration_seconds", "Seconds the last snapshot took.",
                      figures.snapshot_last_s)
    yield from _gauge("snapshot_last_timestamp_seconds", "When the last snapshot was written.",
                      figures.last_snapshot)
    yield _counter("renders", "Charts drawn (cached answers not counted).", figures.renders)
    yield _counter("render_seconds", "Seconds spent drawing charts.", figures.render_seconds)
    yield from _gauge("answer_cache_bytes", "Bytes of answers kept for reuse.",
                      figures.cache_bytes)
    yield from _gauge("answer_cache_budget_bytes", "The answer cache's budget (--cache-mb).",
                      figures.cache_budget)


def job_families(jobs: Iterable[tuple[str, float, dict[str, Any]]]) -> Iterator[Metric]:
    """Per opted-in job (jobid, updated, summary): workers by state, fraction, ETA."""
    workers = GaugeMetricFamily(f"{PREFIX}_job_workers", "A job's workers, by state.",
                                labels=("jobid", "state"))
    fraction = GaugeMetricFamily(f"{PREFIX}_job_fraction",
                                 "A job's progress, 0 to 1 (over its expected workers).",
                                 labels=("jobid",))
    eta = GaugeMetricFamily(f"{PREFIX}_job_eta_seconds",
                            "Seconds until a job is done at its workers' speed, when known.",
                            labels=("jobid",))
    updated = GaugeMetricFamily(f"{PREFIX}_job_updated_timestamp_seconds",
                                "When a job last changed.", labels=("jobid",))
    for jobid, last_change, summary in jobs:
        for state in JOB_STATES:
            workers.add_metric((jobid, state), summary[state])
        fraction.add_metric((jobid,), summary["fraction"])
        if summary["eta_s"] is not None:
            eta.add_metric((jobid,), summary["eta_s"])
        updated.add_metric((jobid,), last_change)
    yield from (workers, fraction, eta, updated)


def exposition(figures: ServerFigures, counters: Counters,
               jobs: Iterable[tuple[str, float, dict[str, Any]]]) -> bytes:
    return generate_latest(_Families([*server_families(figures, counters),
                                      *job_families(jobs)]))
