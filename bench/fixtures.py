"""What the scenarios start from: snapshot files written with the product's own `write_stream`
(loading 100,000 workers from a file takes a second, sending them over HTTP a minute), and a
small keep-alive HTTP client that times its requests.

Worker k of a generated job set belongs to job k % jobs and is named `w{k}`, as in the wrk load
of bench/load.py, so that a load of 1,000 workers updates workers the snapshot already holds.
"""

from __future__ import annotations

import http.client
import time
from pathlib import Path

from tornado_progress.model import Worker
from tornado_progress.snapshot_format import JobCopy, write_stream

DESC = "calibrating"  # a short worker string, as most workers send


def job_set(prefix: str, jobs: int, workers: int, now: float, base_version: int) -> list[JobCopy]:
    """`jobs` jobs named prefix0.. holding `workers` workers in all (worker k in job k % jobs)."""
    copies: list[JobCopy] = []
    for j in range(jobs):
        members = [Worker(f"w{k}", k % 100, 100, DESC, k % 97 != 0, now - (k % 60),
                          base_version + k, 0.5 + (k % 10) / 10)
                   for k in range(j, workers, jobs)]
        copies.append((f"{prefix}{j}", f"benchmark job {j}", now - 3600, now, base_version
                       + workers + j, base_version - 1, members))
    return copies


def write_snapshot(folder: Path, jobs: list[JobCopy]) -> Path:
    """A snapshot file the server loads at start, named as the product names them."""
    folder.mkdir(parents=True, exist_ok=True)
    version = max((job[4] for job in jobs), default=0) + 1
    path = folder / f"snapshot-{version:020d}.msgpack"
    with path.open("wb") as out:
        write_stream(out, jobs, version, time.time())
    return path


def base_version() -> int:
    """Versions a little in the past, as a server that ran before would have left them."""
    return int(time.time() * 1_000_000) - 60_000_000


def workers_snapshot(folder: Path, workers: int, jobs: int = 10, prefix: str = "job") -> Path:
    return write_snapshot(folder, job_set(prefix, jobs, workers, time.time(), base_version()))


class Client:
    """One keep-alive HTTP/1.1 connection; `get` answers (status, body, seconds)."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started

    def ok(self, path: str) -> bytes:
        status, body, _ = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self.connection.close()
