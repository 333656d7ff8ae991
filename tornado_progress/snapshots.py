"""Snapshot files: the whole state written atomically to a folder, and the newest readable
file loaded at start (the format itself is `snapshot_format.py`'s).

Writing: the event loop copies references (workers are immutable tuples) a job at a time,
then packs them a few chunks at a time, handing itself back between them (PACK_SLICE_S); a
thread writes the bytes, syncs and renames. Packing in a thread instead would cost requests
more: msgpack keeps the GIL through each chunk, and the loop, which lets go of it at every
socket call, would wait for a chunk at each.

Loading trusts nothing in the folder. Only regular files named exactly as the writer names them
are read, opened so that a FIFO or a device cannot block the start; a file that fails any check
is set aside under a name that says so, and the next older one is tried. A folder that cannot
be written is no reason not to start: the server starts from what it can read and says
"degraded" in health until a snapshot is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import re
import stat
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, TypeVar

from .model import Job, Store
from .snapshot_format import (
    JobCopy,
    SnapshotError,
    copy_job,
    pack_pieces,
    read_stream,
)

log = logging.getLogger("tornado_progress.snapshots")
# The longest the event loop packs a snapshot before it turns to whatever else waits (s).
PACK_SLICE_S = 0.001
T = TypeVar("T")

PREFIX = "snapshot-"
SUFFIX = ".msgpack"
# Exactly the names the writer gives: a stray "snapshot-backup.msgpack" or a hand-made copy must
# neither win over the numbered files (names sort as versions) nor count when pruning.
_NAME = re.compile(re.escape(PREFIX) + r"([0-9]{20})" + re.escape(SUFFIX))
# What `_write_pieces` leaves behind when a crash interrupts it (tempfile adds the random middle).
_LEFTOVER = re.compile(r"\." + re.escape(PREFIX) + r"[0-9]{20}" + re.escape(SUFFIX)
                       + r"\.(?:[a-z0-9_]+\.)?tmp")
KEEP_FILES = 3
# O_NONBLOCK: opening a FIFO does not wait for a writer. O_NOFOLLOW: a symlink is not followed
# to whatever it names (a device, a FIFO, a file elsewhere).
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW


async def in_turns(work: Iterable[T]) -> list[T]:
    """What `work` yields, each item made whole in one turn of the event loop, which is handed
    back between items once PACK_SLICE_S is spent."""
    done = []
    slice_ends = time.perf_counter() + PACK_SLICE_S
    for item in work:
        done.append(item)
        if time.perf_counter() > slice_ends:
            await asyncio.sleep(0)
            slice_ends = time.perf_counter() + PACK_SLICE_S
    return done


def write_all(descriptor: int, pieces: list[bytes]) -> None:
    """Writes the pieces in order, IOV_MAX at a time, each batch one system call that lets go
    of the GIL: a snapshot is hundreds of pieces, and a write of each through a file object
    took the GIL back from the event loop hundreds of times while requests waited."""
    try:
        batch = os.sysconf("SC_IOV_MAX")
    except (ValueError, OSError):  # a system that does not say
        batch = -1
    batch = batch if batch > 0 else 16  # POSIX's least IOV_MAX
    waiting = deque(memoryview(piece) for piece in pieces if piece)
    while waiting:
        written = os.writev(descriptor, list(itertools.islice(waiting, batch)))
        while written:  # drop what was written: whole pieces, then the start of one
            first = waiting[0]
            if written >= len(first):
                written -= len(first)
                waiting.popleft()
            else:
                waiting[0], written = first[written:], 0


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
        # For `metrics`: snapshots written and failed, and the last one's seconds.
        self.written = 0
        self.failures = 0
        self.last_duration_s: float | None = None
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
        is not a regular file, cannot be read (left in place: the file may be fine, the
        permissions or the disk not), or is not a good snapshot (set aside if possible)."""
        try:
            opened = _open_regular(path)
            if opened is None:
                _skip(path)
                return None
            source, info = opened
            with source:
                jobs, version = read_stream(source)
            named = _NAME.fullmatch(path.name)
            if named is None or int(named.group(1)) != version:
                raise SnapshotError("the version in its name is not the one inside")
        except SnapshotError as error:
            self._unreadable(path, error)
            return None
        except OSError as error:
            log.error("snapshot %s cannot be read (%s); left in place, trying an older one",
                      path, error)
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
            started = time.monotonic()
            jobs = await self._copy_in_turns()
            # The file's version covers every job copied; `version`, from before the copy, is
            # what the next save compares with, so that a change made meanwhile to a job
            # copied earlier is written then.
            writing = asyncio.ensure_future(self._pack_and_write(jobs, self.store.version))
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
            self.written += 1
            self.last_duration_s = time.monotonic() - started
            log.info("snapshot %s: %d jobs, %d workers, %.0f ms", path.name, len(jobs),
                     sum(len(job[6]) for job in jobs), 1000 * self.last_duration_s)
            return path

    def _failed(self, error: BaseException | None) -> None:
        if error is not None:
            self.failures += 1
            self._cannot_write(error)
            log.error("snapshot not written: %s", self.error)

    async def _copy_in_turns(self) -> list[JobCopy]:
        """The jobs there are as the snapshot begins, each copied whole in one turn of the
        loop: a copy takes a reference to every worker, and so touches each, slow to reach
        after a second untouched. A job copied later may hold changes made after the snapshot
        began (the file's version is the store's once all are copied); one deleted meanwhile
        is kept as it was."""
        return await in_turns(copy_job(job) for job in list(self.store.jobs.values()))

    async def _pack_and_write(self, jobs: list[JobCopy], version: int) -> Path:
        pieces = await in_turns(pack_pieces(jobs, version, time.time()))
        return await asyncio.get_running_loop().run_in_executor(None, self._write_pieces,
                                                                pieces, version)

    def _write(self, jobs: list[JobCopy], version: int) -> Path:
        """Packs and writes `jobs` at once, in the calling thread."""
        return self._write_pieces(list(pack_pieces(jobs, version, time.time())), version)

    def _write_pieces(self, pieces: list[bytes], version: int) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{PREFIX}{version:020d}{SUFFIX}"
        descriptor, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp",
                                            dir=self.directory)
        temporary = Path(name)
        try:
            try:
                write_all(descriptor, pieces)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
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
