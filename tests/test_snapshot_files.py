"""Snapshot folders as they are found, not as the writer leaves them (issue 8): stray names,
FIFOs, directories and symlinks named like snapshots, folders that cannot be written, writes
that fail. None of them may stop or hang the start, and health must say when snapshots cannot
be written."""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock, Fetch, as_json
from tornado_progress import snapshot_format, snapshots
from tornado_progress.limits import Limits
from tornado_progress.model import Store
from tornado_progress.snapshots import Snapshotter


def filled(clock: FakeClock, name: str, workers: int = 2) -> Store:
    store = Store(Limits(keep_seconds=1000), clock=clock)
    for w in range(workers):
        clock.advance(1)
        store.update(name, f"w{w}", w, 10, "", True)
    return store


def write(store: Store, folder: Path) -> Path:
    return Snapshotter(store, folder)._write(snapshot_format.copy_state(store), store.version)


def name_for(version: int) -> str:
    return f"snapshot-{version:020d}.msgpack"


def loaded_jobs(folder: Path, clock: FakeClock) -> tuple[Path | None, list[str]]:
    store = Store(Limits(keep_seconds=1000), clock=clock)
    path = Snapshotter(store, folder).load()
    return path, [job.jobid for job in store.jobs.values()]


# --- 1. only the writer's exact names ---------------------------------------------------------


@pytest.mark.parametrize("stray", ["snapshot-backup.msgpack", "snapshot-123.msgpack",
                                   f"snapshot-{'9' * 21}.msgpack", f"snapshot-{'9' * 20}x.msgpack",
                                   f"snapshot-{'٩' * 20}.msgpack"])
def test_a_stray_name_never_wins_over_the_numbered_files(clock: FakeClock, tmp_path: Path,
                                                         stray: str) -> None:
    old = filled(clock, "old state")
    (tmp_path / stray).write_bytes(write(old, tmp_path).read_bytes())
    for path in tmp_path.glob("snapshot-0*.msgpack"):
        path.unlink()
    newest = write(filled(clock, "new state"), tmp_path)
    assert loaded_jobs(tmp_path, clock) == (newest, ["new state"])
    assert (tmp_path / stray).exists()  # not ours: neither loaded nor set aside


@pytest.mark.gen_test
async def test_pruning_touches_only_exact_names_of_regular_files(clock: FakeClock,
                                                                  tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = tmp_path / "snapshots"
    folder.mkdir()
    strays = [folder / "snapshot-backup.msgpack", folder / name_for(1)]
    strays[0].write_bytes(b"a copy the operator made")
    strays[1].symlink_to(write(filled(clock, "elsewhere"), elsewhere))
    store = filled(clock, "job", workers=1)
    snapshotter = Snapshotter(store, folder, keep_files=2)
    written: list[Path] = []
    for current in range(4):
        store.update("job", "w0", current, 10, "", True)
        path = await snapshotter.save()
        assert path is not None
        written.append(path)
    assert sorted(folder.iterdir()) == sorted([*strays, *written[-2:]])
    assert loaded_jobs(folder, clock)[0] == written[-1]


def test_a_file_whose_name_is_not_its_version_is_set_aside(clock: FakeClock,
                                                           tmp_path: Path) -> None:
    """A renamed copy of an old snapshot must not pose as the newest one: every later start
    would load it again and discard what was written since."""
    older = write(filled(clock, "older"), tmp_path)
    store = filled(clock, "renamed")
    renamed = tmp_path / name_for(store.version + 10**9)
    write(store, tmp_path).rename(renamed)
    assert loaded_jobs(tmp_path, clock) == (older, ["older"])
    assert not renamed.exists()
    [aside] = tmp_path.glob("*.unreadable-*")
    assert aside.name.startswith(renamed.name)


# --- 2. FIFOs, directories, symlinks -----------------------------------------------------------


def load_without_hanging(snapshotter: Snapshotter, fifos: list[Path]) -> Path | None:
    """`snapshotter.load()` in a thread. A load stuck opening a FIFO is set free by opening the
    FIFO's other end, so that the test fails instead of hanging."""
    done = threading.Event()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(snapshotter.load())
        except BaseException as error:  # reported below, not lost in the thread
            outcome.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    finished = done.wait(timeout=5)
    if not finished:
        for fifo in fifos:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        done.wait(timeout=10)
    thread.join(timeout=10)
    assert finished, "load() blocked on a FIFO named like a snapshot"
    assert not isinstance(outcome[0], BaseException), outcome[0]
    result: Path | None = outcome[0]
    return result


def make_odd(kind: str, path: Path, target: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
        (path / "inside").write_text("kept")
    elif kind == "device-symlink":
        path.symlink_to("/dev/zero")
    elif kind == "fifo-symlink":
        path.symlink_to(target)
    elif kind == "dangling-symlink":
        path.symlink_to(path.with_name("nowhere"))
    elif kind == "snapshot-symlink":
        path.symlink_to(target)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device-symlink", "fifo-symlink",
                                  "dangling-symlink", "snapshot-symlink"])
def test_what_is_not_a_regular_file_is_skipped_and_left_alone(
        clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str) -> None:
    folder = tmp_path / "snapshots"
    folder.mkdir()
    older = write(filled(clock, "older"), folder)
    store = filled(clock, "newer")
    target = tmp_path / ("fifo" if kind == "fifo-symlink" else "real.msgpack")
    if kind == "fifo-symlink":
        os.mkfifo(target)
    else:
        write(store, tmp_path).rename(target)
    odd = folder / name_for(store.version)
    make_odd(kind, odd, target)
    fifos = {"fifo": [odd], "fifo-symlink": [target]}.get(kind, [])
    loaded = Store(Limits(keep_seconds=1000), clock=clock)
    with caplog.at_level(logging.WARNING, "tornado_progress.snapshots"):
        assert load_without_hanging(Snapshotter(loaded, folder), fifos) == older
    assert list(loaded.jobs) == ["older"]
    assert os.path.lexists(odd) and not list(folder.glob("*.unreadable-*"))
    assert [r for r in caplog.records if odd.name in r.getMessage()], "no log line for it"


# --- 3. folders that cannot be written ---------------------------------------------------------


def inside(argument: object, folder: Path) -> bool:
    if not isinstance(argument, (str, os.PathLike)):
        return False
    path = Path(os.fsdecode(argument))
    return path == folder or folder in path.parents


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Makes a folder refuse every change: chmod 0o555, as for a user who is not root, and the
    refusal patched in as well, because the tests run as root, whom the mode does not stop."""
    folders: list[Path] = []

    def refusing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            for argument in (*args[:2], kwargs.get("dir")):
                if any(inside(argument, folder) for folder in folders):
                    raise PermissionError(errno.EACCES, "Permission denied",
                                          os.fsdecode(argument))
            return real(*args, **kwargs)
        return call

    for name in ("rename", "replace", "unlink", "remove", "mkdir", "rmdir"):
        monkeypatch.setattr(os, name, refusing(getattr(os, name)))
    for name in ("rename", "replace", "unlink", "mkdir"):
        original = getattr(Path, name)
        monkeypatch.setattr(Path, name, refusing(original))
    monkeypatch.setattr(tempfile, "mkstemp", refusing(tempfile.mkstemp))

    def make(folder: Path) -> None:
        folder.chmod(0o555)
        folders.append(folder)

    yield make
    for folder in folders:
        folder.chmod(0o755)


def three_files(clock: FakeClock, folder: Path) -> tuple[Path, Path, Path]:
    """Oldest and middle readable, newest corrupt."""
    oldest = write(filled(clock, "oldest"), folder)
    middle = write(filled(clock, "middle"), folder)
    newest = write(filled(clock, "newest"), folder)
    newest.write_bytes(newest.read_bytes()[:40])
    return oldest, middle, newest


def test_a_corrupt_newest_in_a_read_only_folder_is_skipped(
        clock: FakeClock, tmp_path: Path, read_only: Callable[[Path], None],
        caplog: pytest.LogCaptureFixture) -> None:
    _, middle, newest = three_files(clock, tmp_path)
    read_only(tmp_path)
    store = Store(Limits(keep_seconds=1000), clock=clock)
    snapshotter = Snapshotter(store, tmp_path)
    with caplog.at_level(logging.ERROR, "tornado_progress.snapshots"):
        assert snapshotter.load() == middle
    assert list(store.jobs) == ["middle"]
    assert newest.exists()
    assert snapshotter.error is not None
    assert snapshotter.error.startswith(f"cannot write snapshots in {tmp_path}: [Errno 13]")
    assert [r for r in caplog.records if newest.name in r.getMessage()]


def test_a_leftover_temporary_file_in_a_read_only_folder_is_ignored(
        clock: FakeClock, tmp_path: Path, read_only: Callable[[Path], None]) -> None:
    good = write(filled(clock, "good"), tmp_path)
    leftover = tmp_path / f".{good.name}.abc123_x.tmp"
    leftover.write_bytes(good.read_bytes()[:30])
    read_only(tmp_path)
    snapshotter = Snapshotter(Store(Limits(keep_seconds=1000), clock=clock), tmp_path)
    assert snapshotter.load() == good
    assert leftover.exists()
    assert snapshotter.error is not None and "Permission denied" in snapshotter.error


def test_a_folder_that_cannot_be_made_starts_empty_and_degraded(
        tmp_path: Path, read_only: Callable[[Path], None]) -> None:
    read_only(tmp_path)
    snapshotter = Snapshotter(Store(), tmp_path / "snapshots")
    assert snapshotter.load() is None
    assert snapshotter.error == (f"cannot write snapshots in {tmp_path / 'snapshots'}: [Errno 13] "
                                 f"Permission denied: '{tmp_path / 'snapshots'}'")


def test_a_failing_mkdir_on_an_existing_folder_does_not_stop_the_load(
        clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = write(filled(clock, "good"), tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    monkeypatch.setattr(os, "mkdir", refuse)
    snapshotter = Snapshotter(Store(Limits(keep_seconds=1000), clock=clock), tmp_path)
    assert snapshotter.load() == good
    assert snapshotter.error is not None


@pytest.mark.gen_test
async def test_a_failed_save_sets_the_error_and_a_good_one_clears_it(
        clock: FakeClock, tmp_path: Path, read_only: Callable[[Path], None],
        caplog: pytest.LogCaptureFixture) -> None:
    store = filled(clock, "job")
    folder = tmp_path / "snapshots"
    folder.mkdir()
    snapshotter = Snapshotter(store, folder)
    snapshotter.saved_version = -1  # something to write
    read_only(folder)
    with caplog.at_level(logging.ERROR, "tornado_progress.snapshots"):
        assert await snapshotter.save() is None
    error, last_snapshot = state(snapshotter)
    assert error is not None
    assert error.startswith(f"cannot write snapshots in {folder}: [Errno 13]")
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert last_snapshot is None
    snapshotter.directory = tmp_path / "writable"  # as if the operator fixed the folder
    assert await snapshotter.save() is not None
    error, last_snapshot = state(snapshotter)
    assert error is None
    assert last_snapshot is not None


def state(snapshotter: Snapshotter) -> tuple[str | None, float | None]:
    return snapshotter.error, snapshotter.last_snapshot


@pytest.mark.gen_test
async def test_a_failure_that_is_not_an_os_error_sets_the_error_too(
        clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = filled(clock, "job")
    snapshotter = Snapshotter(store, tmp_path)
    snapshotter.saved_version = -1

    def overflow(*args: object) -> None:
        raise OverflowError("Integer value out of range")

    monkeypatch.setattr(snapshots, "pack_pieces", overflow)
    assert await snapshotter.save() is None
    assert snapshotter.error == (f"cannot write snapshots in {tmp_path}: OverflowError: "
                                 "Integer value out of range")
    assert not list(tmp_path.iterdir())


@pytest.mark.gen_test
async def test_health_says_degraded_while_snapshots_cannot_be_written(
        fetch: Fetch, snapshotter: Snapshotter, read_only: Callable[[Path], None]) -> None:
    assert as_json(await fetch("health"))["status"] == "ok"
    snapshotter.directory.mkdir(parents=True)
    (snapshotter.directory / name_for(5)).write_bytes(b"corrupt")
    read_only(snapshotter.directory)
    snapshotter.load()
    health = as_json(await fetch("health"))
    assert health["status"] == "degraded"
    assert health["snapshot_error"].startswith("cannot write snapshots in ")


def test_a_file_that_cannot_be_opened_is_left_in_place(clock: FakeClock, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A good newest snapshot that the server may not read (owned by another user after a
    start with sudo, say) is not renamed aside: the next start, with permissions fixed, still
    has it."""
    older = write(filled(clock, "older"), tmp_path)
    clock.advance(1)
    newest = write(filled(clock, "newest"), tmp_path)
    opened = snapshots._open_regular

    def refuse_newest(path: Path) -> Any:
        if path == newest:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return opened(path)

    monkeypatch.setattr(snapshots, "_open_regular", refuse_newest)
    assert loaded_jobs(tmp_path, clock) == (older, ["older"])
    assert newest.exists()
    monkeypatch.setattr(snapshots, "_open_regular", opened)
    assert loaded_jobs(tmp_path, clock) == (newest, ["newest"])
