"""The job JSON of the contract (`status`, `poll`), with the figures a viewer needs: per
worker its rate, ETA and stale flag, and a summary of the job.

Pure functions of a `JobView` (an immutable copy of a job), so that the web layer can build a
big job's body in a thread while the job changes (`bodies.py`, which also keeps the bodies).
Nothing here knows about Tornado.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from .model import Job, JobView, Worker

# Workers encoded per json.dumps call: the C encoder keeps the GIL for a whole call, so a big
# body is encoded in pieces and a thread building it hands the event loop the GIL between them.
ENCODE_CHUNK = 500
# ASCII digits only: the page's script (static/show-format.js) splits names the same way.
_DIGITS = re.compile(r"([0-9]+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts w2 before w10: runs of ASCII digits compare as numbers and come
    before text, other runs compare lower-cased by code point, a name comes before the longer
    names it begins ("w" before "w1"), and names equal so far by their exact text. The page
    sorts by the same rule (compareNames in show-format.js), so the server's order, the page's
    and the PNG's agree."""
    runs = tuple((0, int(part)) if part[0] in "0123456789" else (1, part.lower())
                 for part in _DIGITS.split(text) if part)
    return (*runs, (-1, text))


def percent(fraction: float) -> int:
    """Whole percent, rounded down so that 100 % means done; the page and the PNG agree."""
    return int(100 * min(max(fraction, 0.0), 1.0) + 1e-9)


def percent_text(fraction: float) -> str:
    return f"{percent(fraction)}%"


def counts_text(worker: Worker) -> str:
    """"5/22": integers as sent, decimals without float noise."""
    current, total = (str(value) if isinstance(value, int) else format(value, ".10g")
                      for value in (worker.current, worker.total))
    return f"{current}/{total}"


def figures(worker: Worker) -> str:
    """"45%  5/22": a worker's percent and counts as the PNG writes them."""
    return f"{percent_text(worker.fraction)}  {counts_text(worker)}"


def duration(seconds: float | None) -> str:
    """A span of time as the page's script writes it ("4 min 12 s"); a dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "\u2014"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        major, unit, minor, minor_unit = whole // 60, "min", whole % 60, "s"
    elif whole < 86400:
        major, unit, minor, minor_unit = whole // 3600, "h", whole // 60 % 60, "min"
    else:
        major, unit, minor, minor_unit = whole // 86400, "d", whole // 3600 % 24, "h"
    return f"{major} {unit} {minor} {minor_unit}" if minor else f"{major} {unit}"


def worker_eta(worker: Worker) -> float | None:
    """Seconds until the worker is done at its recent speed; None when unknown."""
    if worker.fraction >= 1.0:
        return 0.0
    if not worker.rate or worker.rate <= 0:
        return None
    eta = (worker.total - worker.current) / worker.rate
    return eta if math.isfinite(eta) else None


def worker_json(worker: Worker, now: float, stale_after: float) -> dict[str, Any]:
    eta = worker_eta(worker)
    return {
        "workid": worker.workid,
        "current": worker.current,
        "total": worker.total,
        "desc": worker.desc,
        "ok": worker.ok,
        "updated": worker.updated,
        "fraction": worker.fraction,
        "rate": worker.rate,
        "eta_s": eta,
        "stale": is_stale(worker, now, stale_after),
        "state": STATE_NAMES[state(worker, now, stale_after)],
    }


def is_stale(worker: Worker, now: float, stale_after: float) -> bool:
    """A running worker that has not been heard from for a while."""
    return worker.running and now - worker.updated > stale_after


# The classification's names in the job JSON; "ok" is the palette's name for running.
STATE_NAMES = {"ok": "running", "done": "done", "failed": "failed", "stale": "stale"}


def state(worker: Worker, now: float, stale_after: float) -> str:
    """"failed", "done", "stale" or "ok" (running): the one classification that the JSON
    summary, the page and the PNG share (and the palette's colour names)."""
    if not worker.ok:
        return "failed"
    if worker.fraction >= 1.0:
        return "done"
    return "stale" if now - worker.updated > stale_after else "ok"


def summary(job: JobView, now: float, stale_after: float) -> dict[str, Any]:
    return summary_of(job.workers, now, stale_after, job.expected)


def summary_of(workers: Iterable[Worker], now: float, stale_after: float,
               expected: int | None = None) -> dict[str, Any]:
    """Counts by state (running, done, failed and stale add up to the workers; `waiting` are
    the expected ones not heard from yet), overall fraction (the workers' fractions summed
    over the larger of the expected and seen counts: a worker not started counts as 0) and
    overall ETA (the slowest running worker's, None while any running worker's speed is
    unknown or any expected worker has not started; stale workers are left out of it)."""
    counts = dict.fromkeys(("ok", "done", "failed", "stale"), 0)
    fraction_sum = 0.0
    eta: float | None = 0.0
    count = 0
    for worker in workers:
        count += 1
        fraction_sum += worker.fraction
        kind = state(worker, now, stale_after)
        counts[kind] += 1
        if kind == "ok":
            worker_left = worker_eta(worker)
            eta = None if eta is None or worker_left is None else max(eta, worker_left)
    running, stale = counts["ok"], counts["stale"]
    waiting = max(0, (expected or 0) - count)
    over = max(count, expected or 0)
    if waiting:
        eta = None
    return {
        "workers": count,
        "expected": expected,
        "waiting": waiting,
        "running": running,
        "done": counts["done"],
        "failed": counts["failed"],
        "stale": stale,
        "fraction": fraction_sum / over if over else 0.0,
        "eta_s": eta if running or waiting else (0.0 if count and not stale else None),
    }


def job_json(job: JobView, workers: list[Worker], full: bool, now: float,
             stale_after: float) -> dict[str, Any]:
    return {
        "jobid": job.jobid,
        "desc": job.desc,
        "version": job.version,
        "generation": job.generation,
        "created": job.created,
        "updated": job.updated,
        "server_time": now,
        "full": full,
        "summary": summary(job, now, stale_after),
        "workers": [worker_json(worker, now, stale_after) for worker in workers],
    }


def sorted_workers(job: JobView) -> list[Worker]:
    return sorted(job.workers, key=lambda worker: natural_key(worker.workid))


# What a client is told of an error of the server's own (a 500), whichever path served it.
SERVER_FAILED = "the server failed to answer this request; the error is in its log"


def _dumps(document: Any) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON, and a client's parser would refuse the
    # whole answer; better a loud error here, found by the tests.
    return json.dumps(document, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode()


def encode(document: Any) -> bytes:
    """A JSON answer's body. It ends with a newline, so that curl leaves the prompt on a
    line of its own and a stream of answers reads as JSON lines."""
    return _dumps(document) + b"\n"


def update_answer(version: int, truncated: bool) -> bytes:
    """`encode({"version": ..., "truncated": ...})` formatted by hand: the answer every worker
    waits for."""
    return b'{"version":%d,"truncated":%s}\n' % (version, b"true" if truncated else b"false")


def encode_job(job: JobView, workers: list[Worker], full: bool, now: float,
               stale_after: float) -> bytes:
    """`encode(job_json(...))`, with the workers encoded `ENCODE_CHUNK` at a time."""
    head = _dumps(job_json(job, [], full, now, stale_after))
    pieces = [_dumps([worker_json(worker, now, stale_after)
                      for worker in workers[start:start + ENCODE_CHUNK]])[1:-1]
              for start in range(0, len(workers), ENCODE_CHUNK)]
    # "workers" is the last field: its empty list and the closing brace end the head.
    return head[:-3] + b"[" + b",".join(pieces) + b"]}\n"


def full_body(job: JobView, now: float, stale_after: float) -> bytes:
    """The whole job, workers in natural order: `status`, and `poll` when a delta won't do."""
    return encode_job(job, sorted_workers(job), True, now, stale_after)


def delta_body(job: JobView, changed: list[Worker], now: float, stale_after: float) -> bytes:
    """The workers changed since a poll's cursor, newest first."""
    return encode_job(job, changed, False, now, stale_after)


def timeout_json(job: Job | JobView, now: float) -> dict[str, Any]:
    return {"jobid": job.jobid, "version": job.version, "generation": job.generation,
            "server_time": now, "full": False, "workers": []}
