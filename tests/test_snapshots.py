"""Snapshots: round trip, atomic writes, damaged files set aside, bounded reads, expiry, every
value read validated (issue 8), id collisions merged, job keys kept (schema 2), jobs' own keep
times and expected workers kept (schema 3)."""

from __future__ import annotations

import asyncio
import io
import math
import os
import struct
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.conftest import FakeClock
from tornado_progress import snapshot_format, snapshots
from tornado_progress.limits import Limits
from tornado_progress.model import Store
from tornado_progress.snapshot_format import SnapshotError, read_stream
from tornado_progress.snapshots import Snapshotter


def filled_store(clock: FakeClock, jobs: int = 3, workers: int = 5) -> Store:
    store = Store(Limits(keep_seconds=1000), clock=clock)
    for j in range(jobs):
        store.create(f"job {j}+x", f"desc {j}")
        for w in range(workers):
            clock.advance(1)
            store.update(f"job {j}+x", f"w{w}", w, 10, f"é{w}", w != 2)
    return store


def test_round_trip_keeps_every_field_and_the_change_order(clock: FakeClock,
                                                           tmp_path: Path) -> None:
    store = filled_store(clock)
    store.update("job 0+x", "w1", 9, 10, "again", True)
    saved = Snapshotter(store, tmp_path)
    path = saved._write(snapshot_format.copy_state(store), store.version)
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    Snapshotter(loaded, tmp_path).load()
    assert path.exists()
    assert loaded.version >= store.version
    assert loaded.worker_count == store.worker_count == 15
    for key, job in store.jobs.items():
        other = loaded.jobs[key]
        assert (other.jobid, other.desc, other.created, other.updated, other.version,
                other.generation, other.write_key) == (job.jobid, job.desc, job.created,
                                                       job.updated, job.version, job.generation,
                                                       job.write_key)
        assert list(other.workers.items()) == list(job.workers.items())


@pytest.mark.gen_test
async def test_save_writes_only_when_something_changed(clock: FakeClock,
                                                       tmp_path: Path) -> None:
    store = filled_store(clock)
    snapshotter = Snapshotter(store, tmp_path)
    snapshotter.saved_version = None  # type: ignore[assignment]
    assert await snapshotter.save() is not None
    assert snapshotter.last_snapshot is not None
    assert await snapshotter.save() is None
    store.update("job 1+x", "w1", 3, 10, "", True)
    assert await snapshotter.save() is not None
    assert await snapshotter.save(force=True) is not None


@pytest.mark.gen_test
async def test_old_files_are_pruned_and_no_temporary_file_is_left(clock: FakeClock,
                                                                  tmp_path: Path) -> None:
    store = filled_store(clock, jobs=1, workers=1)
    snapshotter = Snapshotter(store, tmp_path, keep_files=2)
    for current in range(5):
        store.update("job 0+x", "w0", current, 10, "", True)
        await snapshotter.save()
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 2
    assert all(name.startswith("snapshot-") and name.endswith(".msgpack") for name in names)


def test_a_failed_write_leaves_the_previous_snapshot_whole(clock: FakeClock, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    store = filled_store(clock)
    snapshotter = Snapshotter(store, tmp_path)
    first = snapshotter._write(snapshot_format.copy_state(store), store.version)
    before = first.read_bytes()
    store.update("job 0+x", "w0", 1, 10, "", True)

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        snapshotter._write(snapshot_format.copy_state(store), store.version)
    assert [path.name for path in tmp_path.iterdir()] == [first.name]
    assert first.read_bytes() == before


def test_leftover_temporary_file_from_a_crash_is_ignored(clock: FakeClock,
                                                         tmp_path: Path) -> None:
    store = filled_store(clock)
    good = Snapshotter(store, tmp_path)._write(snapshot_format.copy_state(store), store.version)
    partial = tmp_path / f".snapshot-{store.version + 5:020d}.msgpack.tmp"
    partial.write_bytes(good.read_bytes()[:50])
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    assert Snapshotter(loaded, tmp_path).load() == good
    assert not partial.exists()
    assert loaded.worker_count == 15


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong-type", "huge-string"])
def test_unreadable_newest_is_set_aside_and_the_older_loaded(clock: FakeClock, tmp_path: Path,
                                                            damage: str) -> None:
    store = filled_store(clock)
    older = Snapshotter(store, tmp_path)._write(snapshot_format.copy_state(store), store.version)
    store.update("job 0+x", "w9", 1, 10, "", True)
    newest = Snapshotter(store, tmp_path)._write(snapshot_format.copy_state(store), store.version)
    data = newest.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "garbage": os.urandom(4000),
        "empty": b"",
        "wrong-type": msgpack.packb({"format": snapshot_format.FORMAT, "schema": 1, "version": "x",
                                     "jobs": 1}),
        # a str header claiming 4 GiB: the reader must refuse it, not allocate it
        "huge-string": b"\xdb" + struct.pack(">I", 0xFFFFFFF0) + b"abc",
    }[damage]
    newest.write_bytes(damaged)
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    assert Snapshotter(loaded, tmp_path).load() == older
    assert loaded.worker_count == 15
    aside = [path for path in tmp_path.iterdir() if ".unreadable-" in path.name]
    assert len(aside) == 1
    assert aside[0].name.startswith(newest.name)
    assert aside[0].read_bytes() == damaged


@pytest.mark.gen_test
async def test_set_aside_files_are_never_overwritten_or_pruned(clock: FakeClock,
                                                              tmp_path: Path) -> None:
    store = filled_store(clock, jobs=1, workers=1)
    snapshotter = Snapshotter(store, tmp_path, keep_files=1)
    bad = tmp_path / f"snapshot-{store.version + 10**9:020d}.msgpack"
    for attempt in range(2):
        bad.write_bytes(b"bad %d" % attempt)
        Snapshotter(Store(clock=clock), tmp_path).load()
    for current in range(3):
        store.update("job 0+x", "w0", current, 10, "", True)
        await snapshotter.save()
    kept = sorted(path.read_bytes() for path in tmp_path.iterdir() if ".unreadable-" in path.name)
    assert kept == [b"bad 0", b"bad 1"]


def test_no_snapshot_at_all_starts_empty(tmp_path: Path) -> None:
    store = Store()
    assert Snapshotter(store, tmp_path / "new").load() is None
    assert store.jobs == {}
    assert (tmp_path / "new").is_dir()


def test_expired_jobs_leave_memory_and_the_next_snapshot(clock: FakeClock,
                                                         tmp_path: Path) -> None:
    store = Store(Limits(keep_seconds=100), clock=clock)
    store.create("old", "")
    clock.advance(60)
    store.update("young", "w", 1, 2, "", True)
    clock.advance(50)
    store.sweep()
    path = Snapshotter(store, tmp_path)._write(snapshot_format.copy_state(store), store.version)
    with path.open("rb") as source:
        jobs, _ = read_stream(source)
    assert [job.jobid for job in jobs] == ["young"]


def test_jobs_that_expired_while_the_server_was_down_are_not_loaded(clock: FakeClock,
                                                                    tmp_path: Path) -> None:
    store = Store(Limits(keep_seconds=100), clock=clock)
    store.create("old", "")
    clock.advance(60)
    store.create("young", "")
    Snapshotter(store, tmp_path)._write(snapshot_format.copy_state(store), store.version)
    clock.advance(50)
    loaded = Store(Limits(keep_seconds=100), clock=clock)
    Snapshotter(loaded, tmp_path).load()
    assert list(loaded.jobs) == ["young"]


def test_large_jobs_are_written_in_chunks_and_read_back(clock: FakeClock) -> None:
    store = filled_store(clock, jobs=1, workers=snapshot_format.CHUNK * 2 + 3)
    out = io.BytesIO()
    snapshot_format.write_stream(out, snapshot_format.copy_state(store), store.version, 0.0)
    jobs, version = read_stream(io.BytesIO(out.getvalue()))
    assert version == store.version
    assert len(jobs[0].workers) == snapshot_format.CHUNK * 2 + 3


def test_a_worker_count_that_does_not_match_is_rejected(clock: FakeClock) -> None:
    store = filled_store(clock, jobs=1, workers=1)
    [worker] = store.get("job 0+x").workers.values()
    version = worker.version + 1
    header = {"format": snapshot_format.FORMAT, "schema": 1, "version": version, "saved_at": 0.0,
              "jobs": 1}
    claims_two = ["j", "", 0.0, 0.0, version, 5, 2, 1]
    data = b"".join(msgpack.packb(part) for part in (
        header, claims_two, [list(worker)], {"end": True, "jobs": 1}))
    with pytest.raises(SnapshotError, match="workers than its record says"):
        read_stream(io.BytesIO(data))


@pytest.mark.gen_test
async def test_a_save_cancelled_mid_write_does_not_collide_with_the_final_one(
        clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM cancels the periodic save while its thread writes; the final save must wait."""
    store = filled_store(clock)
    snapshotter = Snapshotter(store, tmp_path)
    snapshotter.saved_version = None  # type: ignore[assignment]
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(0.3)  # a slow disk
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    periodic = asyncio.ensure_future(snapshotter.save())
    await asyncio.sleep(0.1)
    periodic.cancel()
    final = await snapshotter.save(force=True)
    assert final is not None and final.exists()
    assert periodic.cancelled()
    assert not list(tmp_path.glob(".*.tmp"))
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    assert Snapshotter(loaded, tmp_path).load() == final
    assert loaded.worker_count == 15


def test_files_written_with_another_chunk_size_still_load(clock: FakeClock,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    store = filled_store(clock, jobs=1, workers=5000)
    monkeypatch.setattr(snapshot_format, "CHUNK", 5000)
    out = io.BytesIO()
    snapshot_format.write_stream(out, snapshot_format.copy_state(store), store.version, 0.0)
    monkeypatch.setattr(snapshot_format, "CHUNK", 512)
    jobs, _ = read_stream(io.BytesIO(out.getvalue()))
    assert len(jobs[0].workers) == 5000


def test_a_keyed_job_keeps_its_key_across_a_restart(clock: FakeClock, tmp_path: Path) -> None:
    store = Store(Limits(keep_seconds=1000), clock=clock)
    store.create("locked", "a protected job", write_key="s3cret-key", keep_seconds=50.5,
                 expected=12, metrics=True, notify="http://hooks.example/progress")
    store.update("locked", "w", 1, 2, "", True, write_key="s3cret-key")
    store.update("open", "w", 1, 2, "", True)
    path = Snapshotter(store, tmp_path)._write(snapshot_format.copy_state(store), store.version)
    assert next(msgpack.Unpacker(io.BytesIO(path.read_bytes())))["schema"] == 3
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    assert Snapshotter(loaded, tmp_path).load() == path
    locked, open_job = loaded.get("locked"), loaded.get("open")
    assert (locked.write_key, locked.keep_seconds, locked.expected, locked.metrics,
            locked.notify) == ("s3cret-key", 50.5, 12, True, "http://hooks.example/progress")
    assert (open_job.write_key, open_job.keep_seconds, open_job.expected, open_job.metrics,
            open_job.notify) == (None, None, None, False, None)


# --- every value read is validated ---------------------------------------------------------

NOW = FakeClock().now
V = 1_000_000  # the newest file's version in the tests below


def parts(jobid: str, version: int, schema: int) -> list[Any]:
    """A valid snapshot of one job with one worker, as the msgpack objects of the file."""
    header = {"format": snapshot_format.FORMAT, "schema": schema, "version": version,
              "saved_at": NOW, "jobs": 1}
    job: list[Any] = [jobid, "a job", NOW - 10, NOW, version - 1, version - 5, 1, 1]
    if schema >= 2:
        job.append(None)  # the write_key
    if schema >= 3:
        job += [None, None, False, None]  # own keep time, expected workers, metrics, notify
    worker = ["w", 1, 10, "working", True, NOW, version - 2, 0.5]
    return [header, job, [worker], {"end": True, "jobs": 1}]


def write_parts(folder: Path, version: int, objects: list[Any]) -> Path:
    path = folder / f"snapshot-{version:020d}.msgpack"
    path.write_bytes(b"".join(msgpack.packb(part, use_bin_type=True) for part in objects))
    return path


NAN, INF = math.nan, math.inf
# (target, field, value): the one value that makes the newest file unreadable.
BAD_VALUES: dict[str, tuple[str, Any, Any]] = {
    "worker current NaN": ("worker", 1, NAN),
    "worker current inf": ("worker", 1, INF),
    "worker current negative": ("worker", 1, -1),
    "worker current bool": ("worker", 1, True),
    "worker total NaN": ("worker", 2, NAN),
    "worker total -inf": ("worker", 2, -INF),
    "worker total negative": ("worker", 2, -0.5),
    "worker updated NaN": ("worker", 5, NAN),
    "worker updated inf": ("worker", 5, INF),
    "worker rate NaN": ("worker", 7, NAN),
    "worker rate inf": ("worker", 7, INF),
    "worker ok not a bool": ("worker", 4, 1),
    "worker version above its job's": ("worker", 6, V),
    "worker version negative": ("worker", 6, -1),
    "worker id empty": ("worker", 0, ""),
    "worker id too long": ("worker", 0, "w" * 257),
    "worker desc too long": ("worker", 3, "d" * 1025),
    "job created NaN": ("job", 2, NAN),
    "job updated NaN": ("job", 3, NAN),
    "job updated inf": ("job", 3, INF),
    "job version above the header's": ("job", 4, V + 1),
    "job version above 2**53": ("job", 4, 2**53 + 1),
    "job version negative": ("job", 4, -1),
    "generation above the version": ("job", 5, V),
    "generation negative": ("job", 5, -1),
    "job id too long": ("job", 0, "j" * 257),
    "job desc too long": ("job", 1, "d" * 1025),
    "job desc not text": ("job", 1, 5),
    "header version 2**64-1": ("header", "version", 2**64 - 1),
    "header version above 2**53": ("header", "version", 2**53 + 1),
    "header version a float": ("header", "version", float(V)),
    "header saved_at NaN": ("header", "saved_at", NAN),
    "header jobs negative": ("header", "jobs", -1),
}


def damaged(schema: int, target: str, field: Any, value: Any) -> tuple[int, list[Any]]:
    """The newest file's objects with one value changed, and the version its name carries (the
    header's, when a name can carry it: a huge header version is exactly what must not win)."""
    objects = parts("newest", V, schema)
    where = {"header": objects[0], "job": objects[1], "worker": objects[2][0]}[target]
    where[field] = value
    name = value if target == "header" and field == "version" and type(value) is int \
        and 0 <= value < 10**20 else V
    return name, objects


def check_newest_set_aside(clock: FakeClock, folder: Path, newest: Path) -> None:
    older = write_parts(folder, V - 100, parts("older", V - 100, 1))
    store = Store(clock=clock)
    assert Snapshotter(store, folder).load() == older
    assert list(store.jobs) == ["older"]
    assert store.worker_count == 1
    assert store.version < 2**53
    [aside] = [path for path in folder.iterdir() if ".unreadable-" in path.name]
    assert aside.name.startswith(newest.name)


@pytest.mark.parametrize("schema", [1, 2, 3])
@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_file_with_a_bad_value_is_set_aside_whole(clock: FakeClock, tmp_path: Path,
                                                    case: str, schema: int) -> None:
    name, objects = damaged(schema, *BAD_VALUES[case])
    check_newest_set_aside(clock, tmp_path, write_parts(tmp_path, name, objects))


@pytest.mark.parametrize("case", ["too short", "too long", "not text", "missing", "extra"])
def test_a_bad_write_key_sets_the_file_aside(clock: FakeClock, tmp_path: Path,
                                             case: str) -> None:
    objects = parts("newest", V, 2)
    job = objects[1]
    if case == "missing":
        del job[8]
    elif case == "extra":
        job.append("another field")
    else:
        job[8] = {"too short": "7 chars", "too long": "k" * 257, "not text": 12345678}[case]
    check_newest_set_aside(clock, tmp_path, write_parts(tmp_path, V, objects))


@pytest.mark.parametrize("field, value", [(9, 0.0), (9, -1.0), (9, NAN), (9, "1 day"),
                                          (10, 0), (10, 2.5), (10, True), (10, "12"),
                                          (11, 1), (11, None), (12, ""), (12, "u" * 2049),
                                          (12, 5)])
def test_a_bad_keep_time_expected_count_flag_or_url_sets_the_file_aside(
        clock: FakeClock, tmp_path: Path, field: int, value: Any) -> None:
    objects = parts("newest", V, 3)
    objects[1][field] = value
    check_newest_set_aside(clock, tmp_path, write_parts(tmp_path, V, objects))


def test_a_schema_1_record_with_a_write_key_is_set_aside(clock: FakeClock,
                                                          tmp_path: Path) -> None:
    objects = parts("newest", V, 1)
    objects[1].append("a key of schema 2")
    check_newest_set_aside(clock, tmp_path, write_parts(tmp_path, V, objects))


@pytest.mark.parametrize("schema", [1, 2, 3])
def test_the_valid_files_of_these_tests_load(clock: FakeClock, tmp_path: Path,
                                             schema: int) -> None:
    """The cases above change one value of this file, which loads as it is."""
    path = write_parts(tmp_path, V, parts("newest", V, schema))
    store = Store(clock=clock)
    assert Snapshotter(store, tmp_path).load() == path
    assert store.get("newest").write_key is None
    assert store.worker_count == 1


# --- ids that differ only in a space and a plus are one id -----------------------------------


def snapshot_of(jobs: list[tuple[list[Any], list[list[Any]]]], version: int) -> list[Any]:
    objects: list[Any] = [{"format": snapshot_format.FORMAT, "schema": 2, "version": version,
                           "saved_at": NOW, "jobs": len(jobs)}]
    for record, workers in jobs:
        objects += [record, workers] if workers else [record]
    return [*objects, {"end": True, "jobs": len(jobs)}]


def job_record(jobid: str, version: int, workers: int) -> list[Any]:
    return [jobid, "", NOW - 10, NOW, version, version - 10, workers, 1 if workers else 0, None]


def worker(workid: str, version: int, current: int = 1) -> list[Any]:
    return [workid, current, 10, "", True, NOW, version, None]


@pytest.mark.parametrize("higher_first", [False, True])
def test_two_jobs_of_one_key_become_the_newer_one(clock: FakeClock, tmp_path: Path,
                                                  higher_first: bool) -> None:
    lower = (job_record("a b", V - 5, 2), [worker("x", V - 7), worker("y", V - 6)])
    higher = (job_record("a+b", V - 1, 1), [worker("z", V - 2)])
    jobs = [higher, lower] if higher_first else [lower, higher]
    write_parts(tmp_path, V, snapshot_of(jobs, V))
    store = Store(clock=clock)
    Snapshotter(store, tmp_path).load()
    assert [job.jobid for job in store.jobs.values()] == ["a+b"]
    assert store.worker_count == 1
    assert list(store.get("a b").workers) == ["z"]


def test_two_workers_of_one_key_become_the_newer_one(clock: FakeClock, tmp_path: Path) -> None:
    workers = [worker("w+1", V - 3, current=7), worker("w 1", V - 4, current=4),
               worker("other", V - 2)]
    write_parts(tmp_path, V, snapshot_of([(job_record("job", V - 1, 3), workers)], V))
    store = Store(clock=clock)
    assert Snapshotter(store, tmp_path).load() is not None
    assert store.worker_count == 2
    job = store.get("job")
    assert [(w.workid, w.current) for w in job.workers.values()] == [("w+1", 7), ("other", 1)]


def test_workers_are_kept_in_version_order_for_poll_deltas(clock: FakeClock,
                                                            tmp_path: Path) -> None:
    workers = [worker("late", V - 2), worker("early", V - 8), worker("middle", V - 5)]
    write_parts(tmp_path, V, snapshot_of([(job_record("job", V - 1, 3), workers)], V))
    store = Store(clock=clock)
    Snapshotter(store, tmp_path).load()
    job = store.get("job")
    assert list(job.workers) == ["early", "middle", "late"]
    changed = job.changed_since(V - 6)
    assert changed is not None and [w.workid for w in changed] == ["late", "middle"]


@pytest.mark.gen_test
async def test_packing_hands_the_loop_back_between_chunks(
        clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot's pieces are packed on the loop a few at a time, whatever else waits running
    in between: twenty pieces of 0.5 ms each let a ticker run at least five times before the
    bytes go to the writing thread."""
    store = filled_store(clock)
    snapshotter = Snapshotter(store, tmp_path)
    snapshotter.saved_version = -1
    real = snapshot_format.pack_pieces

    def slow_pieces(*args: Any) -> Any:
        yield from real(*args)
        for _ in range(20):
            time.sleep(0.0005)
            yield b""

    turns: list[int] = []
    ticks = [0]

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    write_pieces = snapshotter._write_pieces

    def recorded(pieces: list[bytes], version: int) -> Path:
        turns.append(ticks[0])
        return write_pieces(pieces, version)

    monkeypatch.setattr(snapshots, "pack_pieces", slow_pieces)
    monkeypatch.setattr(snapshotter, "_write_pieces", recorded)
    running = asyncio.ensure_future(ticker())
    try:
        path = await snapshotter.save()
    finally:
        running.cancel()
    assert path is not None and path.exists()
    assert turns and turns[0] >= 5


def test_a_snapshot_s_pieces_are_written_whole_through_short_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`write_all` hands the pieces to writev in batches and goes on after a write that took
    only part of them, in the middle of a piece too."""
    pieces = [bytes([n % 256]) * (n * 37 % 500) for n in range(1, 300)]
    calls: list[int] = []
    real_writev = os.writev

    def short_writev(descriptor: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return real_writev(descriptor, [b"".join(buffers)[:777]])

    monkeypatch.setattr(os, "writev", short_writev)
    monkeypatch.setattr(os, "sysconf", lambda name: 64)
    path = tmp_path / "pieces"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        snapshots.write_all(descriptor, pieces)
    finally:
        os.close(descriptor)
    assert path.read_bytes() == b"".join(pieces)
    assert max(calls) == 64 and len(calls) >= len(b"".join(pieces)) // 777


@pytest.mark.gen_test
async def test_jobs_are_copied_a_job_a_turn_into_a_file_of_the_newest_version(
        clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copying a job takes a reference to each of its workers: with the slice spent at once,
    the loop runs between two jobs' copies, and an update it makes there is in the file,
    whose version is that update's; the next save writes again, for a job copied before."""
    store = filled_store(clock, jobs=3)
    snapshotter = Snapshotter(store, tmp_path)
    snapshotter.saved_version = -1
    monkeypatch.setattr(snapshots, "PACK_SLICE_S", 0.0)
    copied: list[str] = []
    copy_job = snapshot_format.copy_job

    def recorded(job: Any) -> Any:
        copied.append(job.jobid)
        return copy_job(job)

    loop = asyncio.get_running_loop()
    seen: list[list[str]] = []

    def update_the_last_job() -> None:
        if not copied:  # the save has not begun copying yet
            loop.call_soon(update_the_last_job)
            return
        seen.append(list(copied))
        store.update("job 2+x", "late", 1, 2, "", True)

    monkeypatch.setattr(snapshots, "copy_job", recorded)
    loop.call_soon(update_the_last_job)
    began = store.version
    path = await snapshotter.save()
    assert path is not None and copied == ["job 0+x", "job 1+x", "job 2+x"]
    assert seen == [["job 0+x"]]  # the loop ran after the first job's copy
    assert store.version == began + 1
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    loaded.version = 0
    Snapshotter(loaded, tmp_path).load()
    assert "late" in loaded.get("job 2+x").workers
    assert loaded.version == store.version
    assert await snapshotter.save() is not None  # the update came after the save began
