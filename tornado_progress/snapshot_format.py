"""The msgpack snapshot format: what a snapshot holds, how it is written, and how it is read
back trusting nothing.

A snapshot file is a stream of msgpack objects: a header map, then for each job a record
followed by its workers in chunks, then a trailer map. The writer packs a piece at a time, so
that the event loop may turn to other work between chunks. The reader sets msgpack's
size limits, so that a damaged length prefix cannot allocate gigabytes, and checks every value
against what the writer could have written. Files and folders are `snapshots.py`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import msgpack

from .model import DESC_MAX_CHARS, ID_MAX_CHARS, KEY_MIN_CHARS, Job, Store, Worker, id_key

FORMAT = "tornado_progress-snapshot"
# Schema 2 added the job's write_key, schema 3 its own keep time (create's maxage), expected
# workers, metrics flag and notify URL. Older files still load: their jobs open to anyone,
# kept --keep-days.
SCHEMA = 3
READABLE_SCHEMAS = (1, 2, 3)
# Fields of a job record by schema.
_RECORD_SIZES = {1: 8, 2: 9, 3: 13}
_URL_MAX_CHARS = 2048
# A job's own fields after the chunk count, as an older schema's job has them.
_OWN_DEFAULTS: tuple[Any, ...] = (None, None, None, False, None)
# Versions count microseconds since 1970; 2**53 lasts until 2255 and every version stays exact
# as a JSON number. A bigger one in a file would make every later snapshot fail to pack.
MAX_VERSION = 2**53
# Workers packed per msgpack call: a fraction of a millisecond of the event loop's time each,
# large enough that the per-call overhead stays negligible. The first call after a pause is the
# slowest by far (the workers' memory, untouched for a second, is slow to reach again on a
# virtual machine: bench/page_touch.py), so the calls are kept small.
CHUNK = 256
# The longest array a reader accepts: a bound against damaged length prefixes, kept apart from
# CHUNK so that files written with another chunk size still load.
MAX_ARRAY_LEN = 65_536
# A str may hold a 1,024-character desc of 4-byte characters; nothing legitimate is bigger.
_MAX_STR_BYTES = 4 * max(DESC_MAX_CHARS, ID_MAX_CHARS) + 64



class SnapshotError(Exception):
    """A snapshot file that cannot be trusted."""


# A job as a snapshot holds it, ending with its write_key, keep time, expected workers, metrics
# flag and notify URL. The 7-field form is still accepted by `write_stream` (bench/fixtures.py
# builds it) and writes an open job with the server's keep time.
JobCopy = (tuple[str, str, float, float, int, int, list[Worker], str | None, float | None,
                 int | None, bool, str | None]
           | tuple[str, str, float, float, int, int, list[Worker]])


def copy_job(job: Job) -> JobCopy:
    """What a snapshot holds of a job, copied by reference (but a reference to each worker)."""
    return (job.jobid, job.desc, job.created, job.updated, job.version, job.generation,
            list(job.workers.values()), job.write_key, job.keep_seconds, job.expected,
            job.metrics, job.notify)


def copy_state(store: Store) -> list[JobCopy]:
    """What a snapshot holds, every job copied at once (Snapshotter copies a job at a time)."""
    return [copy_job(job) for job in store.jobs.values()]


def pack_pieces(jobs: list[JobCopy], version: int, saved_at: float) -> Iterator[bytes]:
    """A snapshot, piece by piece (its header, each job's record, each chunk of its workers,
    the trailer), so that the caller may pause between pieces. A job record is [jobid, desc,
    created, updated, version, generation, worker count, chunk count, write_key, keep_seconds,
    expected, metrics, notify]; schema 1 ended at the chunk count, schema 2 at the
    write_key."""
    packer = msgpack.Packer(use_bin_type=True)
    yield packer.pack({"format": FORMAT, "schema": SCHEMA, "version": version,
                       "saved_at": saved_at, "jobs": len(jobs)})
    for job in jobs:
        jobid, desc, created, updated, job_version, generation, workers = job[:7]
        own = job[7:] if len(job) > 7 else _OWN_DEFAULTS
        chunks = (len(workers) + CHUNK - 1) // CHUNK
        yield packer.pack([jobid, desc, created, updated, job_version, generation,
                           len(workers), chunks, *own])
        for start in range(0, len(workers), CHUNK):
            yield packer.pack(workers[start:start + CHUNK])
    yield packer.pack({"end": True, "jobs": len(jobs)})


def write_stream(out: BinaryIO, jobs: list[JobCopy], version: int, saved_at: float) -> None:
    """Packs a snapshot into `out`."""
    for piece in pack_pieces(jobs, version, saved_at):
        out.write(piece)


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
    size = _RECORD_SIZES[schema]
    _check(type(record) is tuple and len(record) == size,
           f"a job record is not a {size}-field array")
    jobid, desc, created, updated, version, generation, count, chunks = record[:8]
    extra: tuple[Any, ...] = record[8:]  # what the schema has; older schemas had less
    own: tuple[Any, ...] = (*extra, *_OWN_DEFAULTS[len(extra):])
    write_key, keep_seconds, expected, metrics, notify = own
    _check(_text(jobid, 1, ID_MAX_CHARS) and _text(desc, 0, DESC_MAX_CHARS),
           "a job's id or desc is not text of an allowed length")
    _check(_finite(created) and _finite(updated), "a job's created or updated is not finite")
    _check(_version(version, header_version) and _version(generation, version),
           "a job's version is above the file's, or its generation above its version")
    _check(write_key is None or _text(write_key, KEY_MIN_CHARS, ID_MAX_CHARS),
           "a job's write_key is not text of an allowed length")
    _check(keep_seconds is None or (_finite(keep_seconds) and keep_seconds > 0),
           "a job's keep time is not a number of seconds > 0")
    _check(expected is None or (type(expected) is int and expected >= 1),
           "a job's expected workers is not a whole number >= 1")
    _check(type(metrics) is bool and (notify is None or _text(notify, 1, _URL_MAX_CHARS)),
           "a job's metrics flag is not a bool or its notify URL not text of an allowed length")
    _check(type(count) is int and type(chunks) is int and count >= 0 and 0 <= chunks <= count + 1,
           "a job's worker or chunk count is out of range")
    job = Job(jobid, desc, created, generation, write_key, keep_seconds, expected, metrics,
              notify)
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
    except (SnapshotError, OSError):  # an OSError says nothing about the file's contents
        raise
    except Exception as error:  # msgpack raises many kinds on damaged input
        raise SnapshotError(f"{type(error).__name__}: {error}") from error

