"""msgpack snapshots of the whole state, written atomically and read back defensively.

A snapshot file is a stream of msgpack objects: a header map, then for each job a record
followed by its workers in chunks, then a trailer map. Writing happens in a thread: the event
loop only copies references (workers are immutable tuples), and the thread packs a chunk at a
time so that the loop gets the GIL back between chunks.

Reading trusts nothing in the folder (issue 8). Only regular files named exactly as the writer
names them are read, opened so that a FIFO or a device cannot block the start. msgpack's size
limits keep a damaged length prefix from allocating gigabytes, and every value is checked
against what the writer could have written; a file that fails any check is set aside under a
name that says so, and the next older one is tried. A folder that cannot be written is no
reason not to start: the server starts from what it can read and says "degraded" in health.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from .model import DESC_MAX_CHARS, ID_MAX_CHARS, Job, Store, Worker, id_key
from .params import KEY_MIN_CHARS

log = logging.getLogger("tornado_progress.snapshots")

FORMAT = "tornado_progress-snapshot"
# Schema 2 added the job's write_key; schema-1 files still load, their jobs open to anyone.
SCHEMA = 2
READABLE_SCHEMAS = (1, 2)
PREFIX = "snapshot-"
SUFFIX = ".msgpack"
# Exactly the names the writer gives: a stray "snapshot-backup.msgpack" or a hand-made copy must
# neither win over the numbered files (names sort as versions) nor count when pruning.
_NAME = re.compile(re.escape(PREFIX) + r"([0-9]{20})" + re.escape(SUFFIX))
# What `_write` leaves behind when a crash interrupts it (tempfile adds the random middle).
_LEFTOVER = re.compile(r"\." + re.escape(PREFIX) + r"[0-9]{20}" + re.escape(SUFFIX)
                       + r"\.(?:[a-z0-9_]+\.)?tmp")
# Versions count microseconds since 1970; 2**53 lasts until 2255 and every version stays exact
# as a JSON number. A bigger one in a file would make every later snapshot fail to pack.
MAX_VERSION = 2**53
# Workers packed per msgpack call: small enough that the event loop waits at most a few
# milliseconds for the GIL, large enough that the per-call overhead stays negligible.
CHUNK = 2048
KEEP_FILES = 3
# The longest array a reader accepts: a bound against damaged length prefixes, kept apart from
# CHUNK so that files written with another chunk size still load.
MAX_ARRAY_LEN = 65_536
# A str may hold a 1,024-character desc of 4-byte characters; nothing legitimate is bigger.
_MAX_STR_BYTES = 4 * max(DESC_MAX_CHARS, ID_MAX_CHARS) + 64
# O_NONBLOCK: opening a FIFO does not wait for a writer. O_NOFOLLOW: a symlink is not followed
# to whatever it names (a device, a FIFO, a file elsewhere).
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW


class SnapshotError(Exception):
    """A snapshot file that cannot be trusted."""


# A job as a snapshot holds it, ending with its write_key. The 7-field form, without the key,
# is still accepted by `write_stream` (bench/fixtures.py builds it) and writes an open job.
JobCopy = (tuple[str, str, float, float, int, int, list[Worker], str | None]
           | tuple[str, str, float, float, int, int, list[Worker]])


def copy_state(store: Store) -> list[JobCopy]:
    """What a snapshot holds, copied by reference: cheap enough to do on the event loop."""
    return [(job.jobid, job.desc, job.created, job.updated, job.version, job.generation,
             list(job.workers.values()), job.write_key) for job in store.jobs.values()]


def write_stream(out: BinaryIO, jobs: list[JobCopy], version: int, saved_at: float) -> None:
    """Packs a snapshot. A job record is [jobid, desc, created, updated, version, generation,
    worker count, chunk count, write_key]; schema 1 had no write_key."""
    packer = msgpack.Packer(use_bin_type=True)
    out.write(packer.pack({"format": FORMAT, "schema": SCHEMA, "version": version,
                           "saved_at": saved_at, "jobs": len(jobs)}))
    for job in jobs:
        jobid, desc, created, updated, job_version, generation, workers = job[:7]
        write_key = job[7] if len(job) > 7 else None
        chunks = (len(workers) + CHUNK - 1) // CHUNK
        out.write(packer.pack([jobid, desc, created, updated, job_version, generation,
                               len(workers), chunks, write_key]))
        for start in range(0, len(workers), CHUNK):
            out.write(packer.pack(workers[start:start + CHUNK]))
    out.write(packer.pack({"end": True, "jobs": len(jobs)}))


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise SnapshotError(what)


# `type() in` rather than isinstance: a bool is an int to Python, never a number here.
_NUMBERS = (int, float)
_isfinite = math.isfinite


def _finite(value: Any) -> bool:
    return type(value) in _NUMBERS and _isfinite(value)


def _version(value: Any, most: int = MAX_VERSION) -> bool:
    return type(value) is int and 0 <= value <= most


def _text(value: Any, least: int, most: int) -> bool:
    return type(value) is str and least <= len(value) <= most


def _worker(fields: Any, job_version: int) -> Worker:
    # One condition, not a _check per field: this runs for every worker of the file, and
    # function calls would double the time a start spends loading.
    if not (type(fields) is tuple and len(fields) == 8):
        raise SnapshotError("a worker is not an 8-field array")
    workid, current, total, desc, ok, updated, version, rate = fields
    if not (type(workid) is str and 0 < len(workid) <= ID_MAX_CHARS
            and type(desc) is str and len(desc) <= DESC_MAX_CHARS
            and type(current) in _NUMBERS and _isfinite(current) and current >= 0
            and type(total) in _NUMBERS and _isfinite(total) and total >= 0
            and type(ok) is bool and type(updated) in _NUMBERS and _isfinite(updated)
            and (rate is None or (type(rate) in _NUMBERS and _isfinite(rate)))
            and type(version) is int and 0 <= version <= job_version):
        raise SnapshotError(f"a worker has a field of the wrong type or out of range (ids and "
                            f"descs of allowed lengths, finite numbers, current and total >= 0, "
                            f"a version up to its job's): {_quoted(fields)}")
    return Worker(*fields)


def _quoted(value: Any) -> str:
    """A value for a log line: enough to find it in the file, never a flood."""
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _workers(unpacker: msgpack.Unpacker, chunks: int, count: int, job_version: int
             ) -> dict[str, Worker]:
    """A job's workers by id_key, in version order."""
    kept: dict[str, Worker] = {}
    read = 0
    in_order = True
    last = -1
    for _ in range(chunks):
        chunk = unpacker.unpack()
        _check(type(chunk) is tuple, "a worker chunk is not an array")
        for fields in chunk:
            worker = _worker(fields, job_version)
            read += 1
            # "w 1" and "w+1" are one worker to the store: the later report is the one it saw.
            key = id_key(worker.workid)
            other = kept.get(key)
            if other is None or worker.version > other.version:
                kept[key] = worker
            in_order = in_order and other is None and worker.version > last
            last = worker.version
    _check(read == count, "a job has fewer or more workers than its record says")
    if in_order:
        return kept
    # A poll delta walks a job's workers from the newest change back, so they must be in version
    # order, whatever order the file (or a merge of two spellings of an id) left them in.
    return dict(sorted(kept.items(), key=lambda item: item[1].version))


def _job(unpacker: msgpack.Unpacker, schema: int, header_version: int) -> Job:
    record = unpacker.unpack()
    size = 8 if schema == 1 else 9
    _check(type(record) is tuple and len(record) == size,
           f"a job record is not a {size}-field array")
    jobid, desc, created, updated, version, generation, count, chunks = record[:8]
    write_key = record[8] if schema >= 2 else None
    _check(_text(jobid, 1, ID_MAX_CHARS) and _text(desc, 0, DESC_MAX_CHARS),
           "a job's id or desc is not text of an allowed length")
    _check(_finite(created) and _finite(updated), "a job's created or updated is not finite")
    _check(_version(version, header_version) and _version(generation, version),
           "a job's version is above the file's, or its generation above its version")
    _check(write_key is None or _text(write_key, KEY_MIN_CHARS, ID_MAX_CHARS),
           "a job's write_key is not text of an allowed length")
    _check(type(count) is int and type(chunks) is int and count >= 0 and 0 <= chunks <= count + 1,
           "a job's worker or chunk count is out of range")
    job = Job(jobid, desc, created, generation, write_key)
    job.updated, job.version = updated, version
    job.workers = _workers(unpacker, chunks, count, version)
    return job


def _one_per_key(jobs: Iterable[Job]) -> list[Job]:
    """Jobs whose ids differ only in a space and a "+" are one job to the store: keep the later,
    so that the store's worker count is the sum of the jobs it holds."""
    kept: dict[str, Job] = {}
    for job in jobs:
        other = kept.get(job.key)
        if other is None or job.version > other.version:
            kept[job.key] = job
    return list(kept.values())


def _header(unpacker: msgpack.Unpacker) -> tuple[int, int, int]:
    """The schema, version and job count of a snapshot's header."""
    header = unpacker.unpack()
    _check(isinstance(header, dict) and header.get("format") == FORMAT
           and type(header.get("schema")) is int and header["schema"] in READABLE_SCHEMAS,
           "not a tornado_progress snapshot of a schema this server reads")
    _check(_version(header.get("version")) and type(header.get("jobs")) is int
           and header["jobs"] >= 0 and _finite(header.get("saved_at")),
           "the header's version, job count or time is out of range")
    return header["schema"], header["version"], header["jobs"]


def read_stream(source: BinaryIO) -> tuple[list[Job], int]:
    """Jobs and the version counter from a snapshot stream; SnapshotError if anything is off."""
    unpacker = msgpack.Unpacker(
        source, use_list=False, raw=False, strict_map_key=True,
        max_buffer_size=64 * 1024 * 1024, max_str_len=_MAX_STR_BYTES, max_bin_len=0,
        max_ext_len=0, max_array_len=MAX_ARRAY_LEN, max_map_len=16)
    try:
        schema, version, count = _header(unpacker)
        jobs = [_job(unpacker, schema, version) for _ in range(count)]
        trailer = unpacker.unpack()
        _check(trailer == {"end": True, "jobs": len(jobs)}, "the trailer is missing")
        try:
            unpacker.unpack()
        except msgpack.OutOfData:
            return _one_per_key(jobs), version
        raise SnapshotError("there is more after the trailer")
    except SnapshotError:
        raise
    except Exception as error:  # msgpack raises many kinds on damaged input
        raise SnapshotError(f"{type(error).__name__}: {error}") from error


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _open_regular(path: Path) -> tuple[BinaryIO, os.stat_result] | None:
    """`path` open for reading if it is a regular file, else None; OSError if it cannot be
    opened. The file is checked once open: it may have been replaced since it was listed."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink, which O_NOFOLLOW refused
            return None
        raise
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            return os.fdopen(fd, "rb"), info
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def _skip(path: Path) -> None:
    # Not the writer's (it writes regular files only), and not safe to read or to move.
    log.warning("skipping %s: named like a snapshot but not a regular file", path)


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

    def _named(self, pattern: re.Pattern[str]) -> list[os.DirEntry[str]]:
        """Entries whose whole name matches `pattern`, greatest name first; OSError if the
        folder cannot be listed."""
        with os.scandir(self.directory) as entries:
            return sorted((entry for entry in entries if pattern.fullmatch(entry.name)),
                          key=lambda entry: entry.name, reverse=True)

    def files(self) -> list[Path]:
        """Snapshot files, newest first (names carry the zero-padded version counter): regular
        files named exactly as the writer names them, nothing else."""
        try:
            return [Path(entry.path) for entry in self._named(_NAME) if _is_regular(entry)]
        except OSError:
            return []

    def load(self) -> Path | None:
        """Loads the newest readable snapshot into the store; sets unreadable ones aside. Never
        raises for what it finds in the folder: the server starts from what can be read."""
        self._prepare()
        try:
            candidates = self._named(_NAME)
        except OSError as error:
            log.error("cannot list the snapshot folder %s (%s); starting empty",
                      self.directory, error)
            return None
        for entry in candidates:
            path = Path(entry.path)
            if not _is_regular(entry):
                _skip(path)
                continue
            loaded = self._read(path)
            if loaded is None:
                continue
            jobs, version, mtime = loaded
            self.store.load(jobs, version)
            self.saved_version = self.store.version
            self.last_snapshot = mtime
            log.info("loaded snapshot %s: %d jobs, %d workers", path, len(self.store.jobs),
                     self.store.worker_count)
            return path
        return None

    def _prepare(self) -> None:
        """Makes the folder and removes what crashed writes left; notes, without stopping, a
        folder where neither can be done."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._cannot_write(error)
            log.error("cannot make the snapshot folder %s (%s)", self.directory, error)
        else:
            if not os.access(self.directory, os.W_OK | os.X_OK):  # read-only, for a non-root
                self._cannot_write(PermissionError(errno.EACCES, os.strerror(errno.EACCES)))
        with contextlib.suppress(OSError):  # an unlistable folder is reported by load
            for leftover in self._named(_LEFTOVER):
                if not _is_regular(leftover):
                    continue
                try:
                    os.unlink(leftover.path)  # a write that a crash interrupted
                except OSError as error:
                    self._cannot_write(error)
                    log.error("cannot remove %s, left by an interrupted write (%s); ignoring it",
                              leftover.path, error)

    def _read(self, path: Path) -> tuple[list[Job], int, float] | None:
        """The jobs, version and time of one snapshot file, or None (and a log line) when it
        is not a regular file or cannot be read, in which case it is set aside if possible."""
        try:
            opened = _open_regular(path)
            if opened is None:
                _skip(path)
                return None
            source, info = opened
            with source:
                jobs, version = read_stream(source)
            named = _NAME.fullmatch(path.name)
            _check(named is not None and int(named.group(1)) == version,
                   "the version in its name is not the one inside")
        except (OSError, SnapshotError) as error:
            self._unreadable(path, error)
            return None
        return jobs, version, info.st_mtime

    def _unreadable(self, path: Path, error: Exception) -> None:
        try:
            aside = self._set_aside(path)
        except OSError as rename_error:
            self._cannot_write(rename_error)
            log.error("snapshot %s is unreadable (%s) and cannot be set aside (%s); skipping it "
                      "and trying an older one", path, error, rename_error)
            return
        log.error("snapshot %s is unreadable (%s); kept as %s, trying an older one",
                  path, error, aside.name)

    def _set_aside(self, path: Path) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.unreadable-{stamp}")
        counter = 1
        while os.path.lexists(aside):
            aside = path.with_name(f"{path.name}.unreadable-{stamp}-{counter}")
            counter += 1
        path.rename(aside)
        return aside

    def _cannot_write(self, error: BaseException) -> None:
        """Notes that snapshots cannot be written here; health reports it until a save works."""
        reason = str(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"
        self.error = f"cannot write snapshots in {self.directory}: {reason}"

    async def save(self, force: bool = False) -> Path | None:
        """Writes a snapshot if the state changed since the last one (always, with `force`).
        None when there was nothing to write, or when the write failed: then `error` says why
        (one log line), and the next call tries again."""
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
                if not writing.cancelled() and writing.exception() is not None:
                    self._failed(writing.exception())
                raise
            except Exception as error:  # whatever the thread raised: health must say so
                self._failed(error)
                return None
            self.saved_version = version
            self.last_snapshot = time.time()
            self.error = None
            log.info("snapshot %s: %d jobs, %d workers, %.0f ms", path.name, len(jobs),
                     sum(len(job[6]) for job in jobs), 1000 * (time.monotonic() - started))
            return path

    def _failed(self, error: BaseException | None) -> None:
        if error is not None:
            self._cannot_write(error)
            log.error("snapshot not written: %s", self.error)

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
        # Only the writer's own regular files count and go: see `files`.
        for old in self.files()[self.keep_files:]:
            with contextlib.suppress(OSError):
                old.unlink()
        return final
