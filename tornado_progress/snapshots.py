"""msgpack snapshots of the whole state, written atomically and read back defensively.

A snapshot file is a stream of msgpack objects: a header map, then for each job a record
followed by its workers in chunks, then a trailer map. Writing happens in a thread: the event
loop only copies references (workers are immutable tuples), and the thread packs a chunk at a
time so that the loop gets the GIL back between chunks. Reading sets msgpack's size limits, so
a damaged length prefix cannot make the reader allocate gigabytes; a file that fails any check
is set aside under a name that says so, and the next older one is tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from .model import DESC_MAX_CHARS, ID_MAX_CHARS, Job, Store, Worker, id_key

log = logging.getLogger("tornado_progress.snapshots")

FORMAT = "tornado_progress-snapshot"
SCHEMA = 1
PREFIX = "snapshot-"
SUFFIX = ".msgpack"
# Workers packed per msgpack call: small enough that the event loop waits at most a few
# milliseconds for the GIL, large enough that the per-call overhead stays negligible.
CHUNK = 2048
KEEP_FILES = 3
# The longest array a reader accepts: a bound against damaged length prefixes, kept apart from
# CHUNK so that files written with another chunk size still load.
MAX_ARRAY_LEN = 65_536
# A str may hold a 1,024-character desc of 4-byte characters; nothing legitimate is bigger.
_MAX_STR_BYTES = 4 * max(DESC_MAX_CHARS, ID_MAX_CHARS) + 64
_NUMBER = (int, float)


class SnapshotError(Exception):
    """A snapshot file that cannot be trusted."""


JobCopy = tuple[str, str, float, float, int, int, list[Worker]]


def copy_state(store: Store) -> list[JobCopy]:
    """What a snapshot holds, copied by reference: cheap enough to do on the event loop."""
    return [(job.jobid, job.desc, job.created, job.updated, job.version, job.generation,
             list(job.workers.values())) for job in store.jobs.values()]


def write_stream(out: BinaryIO, jobs: list[JobCopy], version: int, saved_at: float) -> None:
    packer = msgpack.Packer(use_bin_type=True)
    out.write(packer.pack({"format": FORMAT, "schema": SCHEMA, "version": version,
                           "saved_at": saved_at, "jobs": len(jobs)}))
    for jobid, desc, created, updated, job_version, generation, workers in jobs:
        chunks = (len(workers) + CHUNK - 1) // CHUNK
        out.write(packer.pack([jobid, desc, created, updated, job_version, generation,
                               len(workers), chunks]))
        for start in range(0, len(workers), CHUNK):
            out.write(packer.pack(workers[start:start + CHUNK]))
    out.write(packer.pack({"end": True, "jobs": len(jobs)}))


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise SnapshotError(what)


def _worker(fields: Any) -> Worker:
    _check(type(fields) is tuple and len(fields) == 8, "a worker is not an 8-field array")
    workid, current, total, desc, ok, updated, version, rate = fields
    _check(type(workid) is str and 0 < len(workid) <= ID_MAX_CHARS
           and isinstance(current, _NUMBER) and isinstance(total, _NUMBER)
           and type(desc) is str and type(ok) is bool and isinstance(updated, _NUMBER)
           and type(version) is int and (rate is None or isinstance(rate, _NUMBER)),
           "a worker field has the wrong type")
    return Worker(*fields)


def _job(unpacker: msgpack.Unpacker) -> Job:
    record = unpacker.unpack()
    _check(type(record) is tuple and len(record) == 8, "a job record is not an 8-field array")
    jobid, desc, created, updated, version, generation, count, chunks = record
    _check(type(jobid) is str and 0 < len(jobid) <= ID_MAX_CHARS and type(desc) is str
           and isinstance(created, _NUMBER) and isinstance(updated, _NUMBER)
           and type(version) is int and type(generation) is int
           and type(count) is int and type(chunks) is int and 0 <= chunks <= count + 1,
           "a job record field has the wrong type")
    job = Job(jobid, desc, created, generation)
    job.updated, job.version = updated, version
    for _ in range(chunks):
        chunk = unpacker.unpack()
        _check(type(chunk) is tuple, "a worker chunk is not an array")
        for fields in chunk:
            worker = _worker(fields)
            job.workers[id_key(worker.workid)] = worker
    _check(len(job.workers) == count, "a job has fewer workers than its record says")
    return job


def read_stream(source: BinaryIO) -> tuple[list[Job], int]:
    """Jobs and the version counter from a snapshot stream; SnapshotError if anything is off."""
    unpacker = msgpack.Unpacker(
        source, use_list=False, raw=False, strict_map_key=True,
        max_buffer_size=64 * 1024 * 1024, max_str_len=_MAX_STR_BYTES, max_bin_len=0,
        max_ext_len=0, max_array_len=MAX_ARRAY_LEN, max_map_len=16)
    try:
        header = unpacker.unpack()
        _check(isinstance(header, dict) and header.get("format") == FORMAT
               and header.get("schema") == SCHEMA and type(header.get("version")) is int
               and type(header.get("jobs")) is int, "not a tornado_progress snapshot")
        jobs = [_job(unpacker) for _ in range(header["jobs"])]
        trailer = unpacker.unpack()
        _check(trailer == {"end": True, "jobs": len(jobs)}, "the trailer is missing")
    except SnapshotError:
        raise
    except Exception as error:  # msgpack raises many kinds on damaged input
        raise SnapshotError(f"{type(error).__name__}: {error}") from error
    return jobs, header["version"]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Snapshotter:
    """Writes the store to `directory` when it changed, and loads the newest readable file."""

    def __init__(self, store: Store, directory: Path | str, keep_files: int = KEEP_FILES) -> None:
        self.store = store
        self.directory = Path(directory)
        self.keep_files = keep_files
        # Nothing to write until the state moves past what it is now (empty, or just loaded).
        self.saved_version = store.version
        self.last_snapshot: float | None = None
        # A sentence while snapshots cannot be written (health says "degraded"); None once one
        # is written.
        self.error: str | None = None
        self._lock = asyncio.Lock()

    def files(self) -> list[Path]:
        """Snapshot files, newest first (names carry the zero-padded version counter)."""
        return sorted(self.directory.glob(f"{PREFIX}*{SUFFIX}"), reverse=True)

    def load(self) -> Path | None:
        """Loads the newest readable snapshot into the store; sets unreadable ones aside."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(f".{PREFIX}*.tmp"):
            leftover.unlink()  # a write that a crash interrupted; the rename never happened
        for path in self.files():
            try:
                with path.open("rb") as source:
                    jobs, version = read_stream(source)
            except (OSError, SnapshotError) as error:
                aside = self._set_aside(path)
                log.error("snapshot %s is unreadable (%s); kept as %s, trying an older one",
                          path, error, aside.name)
                continue
            self.store.load(jobs, version)
            self.saved_version = self.store.version
            self.last_snapshot = path.stat().st_mtime
            log.info("loaded snapshot %s: %d jobs, %d workers", path, len(self.store.jobs),
                     self.store.worker_count)
            return path
        return None

    def _set_aside(self, path: Path) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.unreadable-{stamp}")
        counter = 1
        while aside.exists():
            aside = path.with_name(f"{path.name}.unreadable-{stamp}-{counter}")
            counter += 1
        path.rename(aside)
        return aside

    async def save(self, force: bool = False) -> Path | None:
        """Writes a snapshot if the state changed since the last one (always, with `force`)."""
        async with self._lock:
            version = self.store.version
            if version == self.saved_version and not force:
                return None
            jobs = copy_state(self.store)
            started = time.monotonic()
            writing = asyncio.get_running_loop().run_in_executor(
                None, self._write, jobs, version)
            try:
                path = await asyncio.shield(writing)
            except asyncio.CancelledError:
                # The thread writes on regardless: keep the lock until it is done, so that the
                # final snapshot at shutdown cannot start a second write beside it.
                await asyncio.wait((writing,))
                raise
            self.saved_version = version
            self.last_snapshot = time.time()
            log.info("snapshot %s: %d jobs, %d workers, %.0f ms", path.name, len(jobs),
                     sum(len(job[6]) for job in jobs), 1000 * (time.monotonic() - started))
            return path

    def _write(self, jobs: list[JobCopy], version: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{PREFIX}{version:020d}{SUFFIX}"
        descriptor, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp",
                                            dir=self.directory)
        temporary = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as out:
                write_stream(out, jobs, version, time.time())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        _fsync_directory(self.directory)
        for old in self.files()[self.keep_files:]:
            with contextlib.suppress(OSError):
                old.unlink()
        return final

