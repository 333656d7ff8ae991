"""Starts the real server on many odd or damaged snapshot folders (issue 8): none may stop,
hang or mislead the start.

Run: `.venv/bin/python -m bench.stress_snapshots [--folders 1000] [--parallel 4] [--seed 1]`

Each folder holds a random mix of valid snapshots (schema 1 and 2, some jobs with keys) and, in
random order of versions, files that must not be loaded: truncated files, flipped bytes, NaN
and inf values, a header version of 2**64-1, FIFOs, directories and symlinks named like
snapshots, a stray snapshot-backup.msgpack, a copy whose name is not its version, leftover
temporary files, garbage and empty files. Some folders are chmod 0o555; root (whom the tests and
this script usually run as) is not stopped by the mode, so those folders only prove anything
for another user: the refusals themselves are tested in tests/test_snapshot_files.py.

For each folder the script starts `python -m tornado_progress` on a free port of 127.0.0.1 and
allows it --timeout seconds to answer /progress/health; it then checks that the jobs of the
best valid snapshot (the newest one the rules accept) were loaded, and sends SIGTERM. A file
whose bytes were flipped may still be valid: the product's own reader decides for it, the
expectation of every other kind is fixed by how it was made. The last line is a JSON summary:
{"folders": N, "failed_starts": F, "hung_starts": H, "wrong_state": W, "seconds": S}; each
problem is also described on stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from tests.serverproc import free_port
from tornado_progress.model import Worker
from tornado_progress.snapshot_format import (
    FORMAT,
    JobCopy,
    SnapshotError,
    read_stream,
    write_stream,
)

KEEP_SECONDS = 7 * 86400.0  # the server's default --keep-days
STOP_TIMEOUT_S = 10.0
# The kinds of file that must not be loaded; `build` picks a few for each folder.
BAD_KINDS = ("truncated", "flipped", "nan", "inf", "huge-version", "fifo", "directory",
             "symlink-device", "symlink-fifo", "symlink-dangling", "symlink-outside",
             "stray-backup", "name-mismatch", "leftover-temp", "garbage", "empty")


@dataclass
class Folder:
    """A snapshot folder made for one start, and what that start must load."""

    number: int
    path: Path
    kinds: list[str] = field(default_factory=list)
    # jobid -> workers of the best valid snapshot; empty when there is none.
    expected: dict[str, int] = field(default_factory=dict)
    best_version: int = -1
    read_only: bool = False


def name_of(version: int) -> str:
    return f"snapshot-{version:020d}.msgpack"


def job_copies(tag: str, version: int, rng: random.Random, now: float) -> list[JobCopy]:
    """A small valid state whose ids say which file it came from."""
    copies: list[JobCopy] = []
    for j in range(rng.randint(0, 3)):
        job_version = version - 1 - 100 * j
        workers = [Worker(f"w{k}", k, 10, "stress", rng.random() < 0.9, now - k,
                          job_version - 1 - k, None if k % 2 else 0.5)
                   for k in range(rng.randint(0, 4))]
        key = f"key-{tag}-{j}" if rng.random() < 0.3 else None
        copies.append((f"{tag}-j{j}", "stress job", now - 60, now, job_version,
                       job_version - 50, list(reversed(workers)), key, None, None, False, None))
    return copies


def stream(copies: list[JobCopy], version: int, schema: int = 2) -> bytes:
    """A snapshot file's bytes: the product's writer for schema 2, packed by hand for 1."""
    out = io.BytesIO()
    if schema == 2:
        write_stream(out, copies, version, time.time())
        return out.getvalue()
    parts: list[Any] = [{"format": FORMAT, "schema": 1, "version": version,
                         "saved_at": time.time(), "jobs": len(copies)}]
    for jobid, desc, created, updated, job_version, generation, workers in (
            copy[:7] for copy in copies):
        parts.append([jobid, desc, created, updated, job_version, generation, len(workers),
                      1 if workers else 0])
        parts += [[list(worker) for worker in workers]] if workers else []
    parts.append({"end": True, "jobs": len(copies)})
    return b"".join(msgpack.packb(part, use_bin_type=True) for part in parts)


def poisoned(version: int, value: float, rng: random.Random, now: float) -> bytes:
    """A file that is valid but for one non-finite number."""
    worker = [f"w{rng.randint(0, 9)}", 1, 10, "", True, now, version - 2, 0.5]
    job: list[Any] = ["poisoned", "", now - 60, now, version - 1, version - 9, 1, 1, None]
    target, index = rng.choice([(worker, 1), (worker, 2), (worker, 5), (worker, 7), (job, 2),
                                (job, 3)])
    target[index] = value
    parts = [{"format": FORMAT, "schema": 2, "version": version, "saved_at": now, "jobs": 1},
             job, [worker], {"end": True, "jobs": 1}]
    return b"".join(msgpack.packb(part, use_bin_type=True) for part in parts)


def still_valid(data: bytes, version: int, now: float) -> dict[str, int] | None:
    """What the server should load from a file of flipped bytes, or None if it must refuse it."""
    try:
        jobs, inside = read_stream(io.BytesIO(data))
    except SnapshotError:
        return None
    if inside != version:
        return None
    # A minute of slack: the server decides expiry a little later than this.
    return {job.jobid: len(job.workers) for job in jobs if job.updated >= now - KEEP_SECONDS + 60}


def make_bad(folder: Folder, kind: str, version: int, rng: random.Random, now: float) -> None:
    """One thing named (or almost named) like a snapshot of `version` that must not load."""
    path = folder.path / name_of(version)
    outside = folder.path.parent
    data = stream(job_copies(f"bad{version}", version, rng, now), version)
    if kind == "truncated":
        path.write_bytes(data[:rng.randrange(len(data))])
    elif kind == "flipped":
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
        path.write_bytes(damaged)
        valid = still_valid(bytes(damaged), version, now)
        if valid is not None and version > folder.best_version:
            folder.expected, folder.best_version = valid, version
    elif kind in ("nan", "inf"):
        path.write_bytes(poisoned(version, math.nan if kind == "nan" else -math.inf, rng, now))
    elif kind == "huge-version":
        (folder.path / name_of(2**64 - 1)).write_bytes(stream([], 2**64 - 1))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink-device":
        path.symlink_to("/dev/zero")
    elif kind == "symlink-fifo":
        if not (outside / "fifo").exists():
            os.mkfifo(outside / "fifo")
        path.symlink_to(outside / "fifo")
    elif kind == "symlink-dangling":
        path.symlink_to(outside / "nowhere")
    elif kind == "symlink-outside":
        (outside / f"outside-{version}").write_bytes(data)
        path.symlink_to(outside / f"outside-{version}")
    elif kind == "stray-backup":
        (folder.path / "snapshot-backup.msgpack").write_bytes(data)
    elif kind == "name-mismatch":  # a copy of an older state under a newer name
        path.write_bytes(stream(job_copies(f"old{version}", version - 10**5, rng, now),
                                version - 10**5))
    elif kind == "leftover-temp":
        (folder.path / f".{path.name}.{rng.randrange(16**8):08x}.tmp").write_bytes(data[:40])
    else:
        path.write_bytes(b"" if kind == "empty" else rng.randbytes(rng.randint(1, 2000)))


def build(number: int, root: Path, seed: int) -> Folder:
    """Folder `number`: 0 to 3 valid snapshots and 0 to 4 bad things, versions in random order."""
    rng = random.Random(seed * 1_000_003 + number)
    now = time.time()
    folder = Folder(number, root / f"{number:05d}" / "snapshots")
    folder.path.mkdir(parents=True)
    items = ["valid"] * rng.randint(0, 3) + rng.sample(BAD_KINDS, rng.randint(0, 4))
    rng.shuffle(items)
    # Versions a little in the past, as a server that ran before would have left them.
    version = int(now * 1_000_000) - 10**9
    for item in items:
        version += 10**6
        if item != "valid":
            make_bad(folder, item, version, rng, now)
            folder.kinds.append(item)
            continue
        copies = job_copies(f"f{number}-v{version}", version, rng, now)
        schema = rng.choice((1, 2))
        (folder.path / name_of(version)).write_bytes(stream(copies, version, schema))
        folder.kinds.append(f"valid-schema{schema}")
        if version > folder.best_version:
            folder.best_version = version
            folder.expected = {copy[0]: len(copy[6]) for copy in copies}
    if rng.random() < 0.2:
        folder.path.chmod(0o555)  # stops a user who is not root only: see the module's doc
        folder.read_only = True
        folder.kinds.append("read-only")
    return folder


def get(port: int, endpoint: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/progress/{endpoint}",
                                timeout=timeout) as response:
        return json.loads(response.read())


def wait_for_health(process: subprocess.Popen[bytes], port: int, timeout: float
                    ) -> dict[str, Any] | str:
    """The first health answer, or "failed" (the process exited, or health answered an error
    status) or "hung" (no answer in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "failed"
        try:
            health: dict[str, Any] = get(port, "health", timeout=1.0)
            return health
        except urllib.error.HTTPError:
            return "failed"  # up, but health answers an error status: not a start that works
        except (OSError, ValueError):
            time.sleep(0.05)  # a separate process: there is no event to wait on
    return "hung"


def wrong_state(port: int, folder: Folder, health: dict[str, Any]) -> str | None:
    """What differs from the best valid snapshot, or None."""
    expected_workers = sum(folder.expected.values())
    if (health.get("jobs"), health.get("workers")) != (len(folder.expected), expected_workers):
        return (f"health has {health.get('jobs')} jobs, {health.get('workers')} workers; "
                f"expected {len(folder.expected)}, {expected_workers}")
    plain = [jobid for jobid in folder.expected
             if jobid.isascii() and jobid.isprintable() and not set(jobid) & set(" +")]
    for jobid in plain[:3]:
        try:
            job = get(port, "status?" + urllib.parse.urlencode({"jobid": jobid}))
        except (OSError, ValueError) as error:
            return f"status of {jobid!r}: {error}"
        if len(job.get("workers", ())) != folder.expected[jobid]:
            return f"job {jobid!r} has {len(job.get('workers', ()))} workers"
    return None


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_once(folder: Folder, timeout: float, attempt: int) -> tuple[str, str]:
    """One start on `folder`: ("ok" | "failed" | "hung" | "wrong" | "busy-port", detail)."""
    port = free_port()
    log_path = folder.path.parent / f"server-{attempt}.log"
    with log_path.open("wb") as log:  # the child keeps its own copy of the handle
        process = subprocess.Popen(
            [sys.executable, "-m", "tornado_progress", "--host", "127.0.0.1", "--port",
             str(port), "--snapshot-dir", str(folder.path), "--snapshot-interval", "3600"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        health = wait_for_health(process, port, timeout)
        if isinstance(health, dict):
            problem = wrong_state(port, folder, health)
            return ("wrong", problem) if problem else ("ok", "")
    finally:
        stop(process)
    text = log_path.read_text(errors="replace")
    if health == "failed" and "Address already in use" in text:
        return "busy-port", ""  # another process took the free port first: not the server's
    return health, text.strip().splitlines()[-1] if text.strip() else "no output"


def run_folder(number: int, root: Path, seed: int, timeout: float) -> tuple[Folder, str, str]:
    folder = build(number, root, seed)
    outcome, detail = "busy-port", ""
    for attempt in range(3):
        outcome, detail = start_once(folder, timeout, attempt)
        if outcome != "busy-port":
            break
    return folder, outcome, detail


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folders", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=4, help="servers started at once")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a start may take")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the folders for a look")
    args = parser.parse_args(argv)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="stress_snapshots-"))
    counts = {"ok": 0, "failed": 0, "hung": 0, "wrong": 0, "busy-port": 0}
    try:
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            runs = pool.map(lambda n: run_folder(n, root, args.seed, args.timeout),
                            range(args.folders))
            for folder, outcome, detail in runs:
                counts[outcome] += 1
                if outcome != "ok":
                    print(f"folder {folder.number} {folder.kinds}: {outcome}: {detail}",
                          file=sys.stderr)
    finally:
        for directory in root.glob("*/snapshots"):
            directory.chmod(0o755)
        if args.keep:
            print(f"folders kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root)
    print(json.dumps({"folders": args.folders, "failed_starts": counts["failed"] + counts[
        "busy-port"], "hung_starts": counts["hung"], "wrong_state": counts["wrong"],
        "seconds": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
