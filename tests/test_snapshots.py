"""Snapshots: round trip, atomic writes, damaged files set aside, bounded reads, expiry."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import time
from pathlib import Path

import msgpack
import pytest

from tests.conftest import FakeClock
from tornado_progress import snapshots
from tornado_progress.model import Limits, Store
from tornado_progress.snapshots import SnapshotError, Snapshotter, read_stream


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
    path = saved._write(snapshots.copy_state(store), store.version)
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    Snapshotter(loaded, tmp_path).load()
    assert path.exists()
    assert loaded.version >= store.version
    assert loaded.worker_count == store.worker_count == 15
    for key, job in store.jobs.items():
        other = loaded.jobs[key]
        assert (other.jobid, other.desc, other.created, other.updated, other.version,
                other.generation) == (job.jobid, job.desc, job.created, job.updated,
                                      job.version, job.generation)
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
    first = snapshotter._write(snapshots.copy_state(store), store.version)
    before = first.read_bytes()
    store.update("job 0+x", "w0", 1, 10, "", True)

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        snapshotter._write(snapshots.copy_state(store), store.version)
    assert [path.name for path in tmp_path.iterdir()] == [first.name]
    assert first.read_bytes() == before


def test_leftover_temporary_file_from_a_crash_is_ignored(clock: FakeClock,
                                                         tmp_path: Path) -> None:
    store = filled_store(clock)
    good = Snapshotter(store, tmp_path)._write(snapshots.copy_state(store), store.version)
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
    older = Snapshotter(store, tmp_path)._write(snapshots.copy_state(store), store.version)
    store.update("job 0+x", "w9", 1, 10, "", True)
    newest = Snapshotter(store, tmp_path)._write(snapshots.copy_state(store), store.version)
    data = newest.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "garbage": os.urandom(4000),
        "empty": b"",
        "wrong-type": msgpack.packb({"format": snapshots.FORMAT, "schema": 1, "version": "x",
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
    path = Snapshotter(store, tmp_path)._write(snapshots.copy_state(store), store.version)
    with path.open("rb") as source:
        jobs, _ = read_stream(source)
    assert [job.jobid for job in jobs] == ["young"]


def test_jobs_that_expired_while_the_server_was_down_are_not_loaded(clock: FakeClock,
                                                                    tmp_path: Path) -> None:
    store = Store(Limits(keep_seconds=100), clock=clock)
    store.create("old", "")
    clock.advance(60)
    store.create("young", "")
    Snapshotter(store, tmp_path)._write(snapshots.copy_state(store), store.version)
    clock.advance(50)
    loaded = Store(Limits(keep_seconds=100), clock=clock)
    Snapshotter(loaded, tmp_path).load()
    assert list(loaded.jobs) == ["young"]


def test_large_jobs_are_written_in_chunks_and_read_back(clock: FakeClock) -> None:
    store = filled_store(clock, jobs=1, workers=snapshots.CHUNK * 2 + 3)
    out = io.BytesIO()
    snapshots.write_stream(out, snapshots.copy_state(store), store.version, 0.0)
    jobs, version = read_stream(io.BytesIO(out.getvalue()))
    assert version == store.version
    assert len(jobs[0].workers) == snapshots.CHUNK * 2 + 3


def test_a_worker_count_that_does_not_match_is_rejected(clock: FakeClock) -> None:
    store = filled_store(clock, jobs=1, workers=1)
    [worker] = store.get("job 0+x").workers.values()
    header = {"format": snapshots.FORMAT, "schema": 1, "version": 5, "saved_at": 0.0, "jobs": 1}
    claims_two = ["j", "", 0.0, 0.0, 5, 5, 2, 1]
    data = b"".join(msgpack.packb(part) for part in (
        header, claims_two, [list(worker)], {"end": True, "jobs": 1}))
    with pytest.raises(SnapshotError, match="fewer workers"):
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
    monkeypatch.setattr(snapshots, "CHUNK", 5000)
    out = io.BytesIO()
    snapshots.write_stream(out, snapshots.copy_state(store), store.version, 0.0)
    monkeypatch.setattr(snapshots, "CHUNK", 512)
    jobs, _ = read_stream(io.BytesIO(out.getvalue()))
    assert len(jobs[0].workers) == 5000
