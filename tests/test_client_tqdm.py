"""tornado_progress.client.tqdm against the real server process: a pool of 8 processes, each
a worker with a bar, the final state at the end of a loop, failures in a loop and in a with
block, a disabled bar, and the cost of iterating."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ServerProcess, running_server
from tornado_progress.client import Reporter
from tornado_progress.client.tqdm import UNKNOWN_EXCEPTION, tqdm

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("tqdm") / "snapshots") as process:
        yield process


def workers(server: ServerProcess, jobid: str) -> dict[str, dict[str, Any]]:
    return {worker["workid"]: worker
            for worker in server.get(f"status?jobid={jobid}")["workers"]}


def state(server: ServerProcess, jobid: str, workid: str) -> tuple[Any, ...]:
    worker = workers(server, jobid)[workid]
    return worker["current"], worker["total"], worker["desc"], worker["state"]


def bar(server: ServerProcess, iterable: Any = None, **kwargs: Any) -> tqdm:
    return tqdm(iterable, server=server.base_url, file=io.StringIO(), **kwargs)


def pool_task(base_url: str, jobid: str, part: int) -> int:
    done = 0
    for _ in tqdm(range(40), server=base_url, jobid=jobid, workid=f"w{part}",
                  desc=f"part {part}", file=io.StringIO(), mininterval=0.01):
        time.sleep(0.001)
        done += 1
        if part < 0 and done == 15:
            raise ValueError("a bad part")
    return done


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_pool_of_8_processes_shows_8_workers_done_and_a_failure(
        server: ServerProcess) -> None:
    context = multiprocessing.get_context("fork")
    with context.Pool(8) as pool:
        assert pool.starmap(pool_task, [(server.base_url, "pool", k) for k in range(8)]) \
            == [40] * 8
        with pytest.raises(ValueError, match="a bad part"):
            pool.apply(pool_task, (server.base_url, "pool", -1))
    found = workers(server, "pool")
    assert all(found[f"w{k}"]["state"] == "done" for k in range(8)), found
    assert found["w0"]["desc"] == "part 0"
    failed = found["w-1"]
    assert (failed["state"], failed["desc"], failed["current"]) == ("failed", "ValueError", 14)


def test_the_loop_reports_n_of_total_with_desc_and_postfix(server: ServerProcess) -> None:
    progress = bar(server, range(30), jobid="texts", workid="w", desc="flagging")
    for i in progress:
        if i == 10:
            progress.set_postfix(rfi="3%")
    assert state(server, "texts", "w") == (30, 30, "flagging, rfi=3%", "done")


def test_break_and_return_end_the_worker_as_fine(server: ServerProcess) -> None:
    for i in bar(server, range(30), jobid="ends", workid="break"):
        if i == 9:
            break

    def first_big() -> int:
        for i in bar(server, range(30), jobid="ends", workid="return"):
            if i > 4:
                return int(i)
        return -1

    assert first_big() == 5
    assert state(server, "ends", "break")[3] == "running"
    assert state(server, "ends", "return")[3] == "running"
    assert any(i > 3 for i in bar(server, range(30), jobid="ends", workid="any"))
    assert state(server, "ends", "any")[3] == "running"


def test_an_exception_in_the_loop_marks_the_worker_failed_with_its_name(
        server: ServerProcess) -> None:
    def body_raises() -> None:
        for i in bar(server, range(30), jobid="fails", workid="body"):
            if i == 7:
                raise KeyError(i)

    def iterable_raises() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    def caught_in_the_same_function() -> None:
        try:
            for i in bar(server, range(30), jobid="fails", workid="caught"):
                if i == 5:
                    raise LookupError(i)
        except LookupError:
            pass

    def through_a_with_block() -> None:
        with contextlib.nullcontext():
            for i in bar(server, range(30), jobid="fails", workid="with"):
                if i == 6:
                    raise ArithmeticError(i)

    with pytest.raises(KeyError):
        body_raises()
    caught_in_the_same_function()
    with pytest.raises(ArithmeticError):
        through_a_with_block()
    with pytest.raises(OSError):
        for _ in bar(server, iterable_raises(), jobid="fails", workid="iterable"):
            pass
    assert sys.gettrace() is None  # the one-shot trace is gone
    assert state(server, "fails", "body") == (7, 30, "KeyError", "failed")
    assert state(server, "fails", "iterable")[2:] == ("OSError", "failed")
    assert state(server, "fails", "caught")[2:] == ("LookupError", "failed")
    assert state(server, "fails", "with")[2:] == ("ArithmeticError", "failed")


def test_an_exception_in_a_with_block_marks_the_worker_failed(server: ServerProcess) -> None:
    with pytest.raises(TimeoutError), bar(server, total=20, jobid="with", workid="w") as manual:
        manual.update(5)
        raise TimeoutError
    assert state(server, "with", "w") == (5, 20, "TimeoutError", "failed")
    with bar(server, total=20, jobid="with", workid="fine") as manual:
        manual.update(20)
    assert state(server, "with", "fine")[3] == "done"


def test_under_a_tracer_the_failure_has_a_general_text(server: ServerProcess) -> None:
    def body_raises() -> None:
        for i in bar(server, range(30), jobid="traced", workid="w"):
            if i == 3:
                raise KeyError(i)

    def tracer(frame: Any, event: str, arg: Any) -> None:
        return None

    sys.settrace(tracer)  # a debugger's or coverage's tracer: the adapter leaves it alone
    try:
        with pytest.raises(KeyError):
            body_raises()
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
    assert state(server, "traced", "w")[2:] == (UNKNOWN_EXCEPTION, "failed")


def test_a_disabled_bar_still_reports(server: ServerProcess) -> None:
    for _ in tqdm(iter(range(25)), server=server.base_url, jobid="quiet", workid="w",
                  disable=True):
        pass
    assert state(server, "quiet", "w") == (25, 25, "", "done")
    with tqdm(total=9, server=server.base_url, jobid="quiet", workid="manual",
              disable=True) as manual:
        manual.update(4)
    assert state(server, "quiet", "manual")[:2] == (4, 9)


def test_an_unknown_total_counts_in_the_text(server: ServerProcess) -> None:
    progress = bar(server, jobid="unknown", workid="w", mininterval=0, unit="files")
    progress.update(5)
    assert progress._reporter.flush() is True
    assert state(server, "unknown", "w")[:3] == (0, 0, "5 files")
    progress.update(7)
    progress.close()
    assert state(server, "unknown", "w") == (12, 12, "", "done")


def test_iterating_reports_from_the_redraws_not_per_item(
        server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    update = Reporter.update

    def counting(self: Reporter, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        update(self, *args, **kwargs)

    monkeypatch.setattr(Reporter, "update", counting)
    for _ in bar(server, range(200_000), jobid="cheap", workid="w"):
        pass
    assert calls < 100, calls
    assert state(server, "cheap", "w")[0] == 200_000


MODULE_LEVEL = """
import io, sys
from tornado_progress.client.tqdm import tqdm
for i in tqdm(range(30), server=sys.argv[1], jobid="script", workid="top", file=io.StringIO()):
    if i == 4:
        raise LookupError("module level")
"""


def test_an_uncaught_exception_at_module_level_names_itself(server: ServerProcess) -> None:
    result = subprocess.run([sys.executable, "-c", MODULE_LEVEL, server.base_url], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "LookupError: module level" in result.stderr
    assert state(server, "script", "top") == (4, 30, "LookupError", "failed")


def test_without_tqdm_the_import_says_what_to_install() -> None:
    code = ("import sys; sys.modules['tqdm'] = None\n"
            "try:\n    import tornado_progress.client.tqdm\n"
            "except ImportError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    assert "pip install 'tornado_progress[client]'" in result.stdout
