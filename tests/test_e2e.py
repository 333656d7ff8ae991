"""The real server process: command line, signals, crash and restart, the demo."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ErrorStatus, ServerProcess, running_server
from tornado_progress.demo import demo_workers

pytestmark = pytest.mark.e2e


def update(server: ServerProcess, **fields: Any) -> Any:
    return server.get("update?" + urllib.parse.urlencode(fields))


def wait_until(condition: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_help_lists_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "tornado_progress", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ("--host", "--port", "--snapshot-dir", "--snapshot-interval", "--keep-days",
                   "--demo", "--stale-after", "--poll-interval", "--max-jobs",
                   "--max-workers-per-job", "--max-workers",
                   "--max-request-bytes", "--header-timeout", "--idle-timeout",
                   "--body-timeout", "--max-connections", "--max-connections-per-address",
                   "--send-timeout", "--cache-mb", "--max-render-pixels",
                   "--require-key", "--write-tokens", "--new-jobs-per-minute",
                   "--trusted-proxies", "--frame-ancestors"):
        assert option in result.stdout


def test_console_script_is_the_same_program() -> None:
    script = shutil.which("tornado-progress", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    assert "--snapshot-interval" in result.stdout


def test_bad_option_is_refused_with_a_message() -> None:
    result = subprocess.run([sys.executable, "-m", "tornado_progress", "--keep-days", "-1"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--keep-days" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_writes_a_final_snapshot_and_exits_0(tmp_path: Path, signum: int) -> None:
    snapshot_dir = tmp_path / "snapshots"
    server = ServerProcess(snapshot_dir, None, "--snapshot-interval", "3600").start()
    try:
        update(server, jobid="j", workid="w", current=3, total=9, desc="kept")
        assert server.signal(signum) == 0
    finally:
        server.stop()
    assert list(snapshot_dir.glob("snapshot-*.msgpack"))
    with running_server(snapshot_dir) as again:
        worker = again.get("status?jobid=j")["workers"][0]
        assert (worker["current"], worker["desc"]) == (3, "kept")


def test_kill_9_loses_at_most_the_last_interval(tmp_path: Path) -> None:
    snapshot_dir = tmp_path / "snapshots"
    server = ServerProcess(snapshot_dir, None, "--snapshot-interval", "0.2").start()
    try:
        update(server, jobid="j", workid="before", current=1, total=2)
        wait_until(lambda: server.get("health")["last_snapshot"] is not None)
        version_before = server.get("status?jobid=j")["version"]
        assert server.signal(signal.SIGKILL) == -signal.SIGKILL
    finally:
        server.stop()
    with running_server(snapshot_dir) as again:
        status = again.get("status?jobid=j")
        assert [w["workid"] for w in status["workers"]] == ["before"]
        # versions keep rising after the restart, so a viewer's cursor stays valid
        after = update(again, jobid="j", workid="after", current=1, total=2)
        assert after["version"] > version_before


def test_a_job_lost_in_a_crash_comes_back_with_its_next_updates(tmp_path: Path) -> None:
    snapshot_dir = tmp_path / "snapshots"
    server = ServerProcess(snapshot_dir, None, "--snapshot-interval", "3600").start()
    try:
        update(server, jobid="j", workid="w1", current=1, total=2)
        server.signal(signal.SIGKILL)
    finally:
        server.stop()
    with running_server(snapshot_dir) as again:
        with pytest.raises(ErrorStatus) as missing:
            again.get("status?jobid=j")
        assert missing.value.code == 404
        update(again, jobid="j", workid="w1", current=2, total=2)
        assert again.get("status?jobid=j")["workers"][0]["current"] == 2


def test_demo_feeds_demo1_through_http(tmp_path: Path) -> None:
    with running_server(tmp_path / "snapshots", "--demo") as server:
        def moving() -> bool:
            try:
                status = server.get("status?jobid=demo1")
            except ErrorStatus:
                return False
            return bool(sum(w["current"] for w in status["workers"]) > 8)

        wait_until(moving)
        status = server.get("status?jobid=demo1")
        assert status["desc"].startswith("Demo")
        assert len(status["workers"]) >= 6
        assert status["summary"]["expected"] == len(demo_workers())  # "not started" counted


def test_keep_days_is_a_decimal(tmp_path: Path) -> None:
    with running_server(tmp_path / "snapshots", "--keep-days", "0.00001") as server:
        update(server, jobid="short", workid="w", current=1, total=2)  # kept 0.864 s
        wait_until(lambda: server.get("health")["jobs"] == 0, seconds=10)
        with pytest.raises(ErrorStatus) as missing:
            server.get("status?jobid=short")
        assert missing.value.code == 404


def test_a_request_line_over_the_limit_gets_a_413_sentence(tmp_path: Path) -> None:
    with running_server(tmp_path / "snapshots", "--max-request-bytes", "2000") as server:
        with pytest.raises(ErrorStatus) as refused:
            update(server, jobid="j", workid="w", current=1, total=2, desc="x" * 5000)
        assert refused.value.code == 413
        assert json.loads(refused.value.body)["error"].startswith("the request line is ")
        assert server.get("health")["jobs"] == 0
        # a short one still works on the same server
        assert update(server, jobid="j", workid="w", current=1, total=2)["truncated"] is False


@pytest.mark.parametrize(("option", "value"), [
    ("--frame-ancestors", "'self'; script-src *"), ("--frame-ancestors", "a\r\nX-Evil: 1"),
    ("--trusted-proxies", "localhost"), ("--new-jobs-per-minute", "-1"),
    ("--max-connections", "0"), ("--header-timeout", "nan")])
def test_hardening_options_refuse_bad_values(option: str, value: str) -> None:
    result = subprocess.run([sys.executable, "-m", "tornado_progress", option, value],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert option in result.stderr
