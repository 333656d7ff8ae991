"""Hostile connections and shutdown against the real server process (issue 8, items 1 and 8):
descriptor exhaustion, slowloris, and SIGTERM with viewers parked or a background task failed."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ServerProcess, free_port, running_server

pytestmark = pytest.mark.e2e

HALF_REQUEST = b"GET /progress/health HTTP/1.1\r\nHost: x\r\n"


def open_half_requests(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(HALF_REQUEST)
        sockets.append(sock)
    return sockets


def timed_get(url: str, timeout: float) -> tuple[float, Any]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return time.monotonic() - started, json.loads(response.read())


def test_half_open_connections_past_the_descriptor_limit_leave_room_for_updates(
        tmp_path: Path) -> None:
    """1,100 half-open connections against a limit of 1,024 descriptors once made updates time
    out while the server spun writing tracebacks; here 300 against 256."""
    with running_server(tmp_path / "snapshots", "--header-timeout", "60",
                        open_files=256) as server:
        sockets = open_half_requests(server.port, 300)
        try:
            for index in range(5):
                seconds, answer = timed_get(
                    f"{server.base_url}/progress/update?jobid=j&workid=w{index}&current=1"
                    "&total=2", timeout=5)
                assert "version" in answer
                assert seconds < 2
            log = server.log()
            assert len(log) < 1_000_000
            assert "Traceback" not in log
            assert "at most 192 open connections" in log
        finally:
            for sock in sockets:
                sock.close()


def test_slowloris_connections_are_closed_at_the_header_timeout(tmp_path: Path) -> None:
    """Connections that sent a header line now and then once stayed open indefinitely."""
    with running_server(tmp_path / "snapshots", "--header-timeout", "1") as server:
        sockets = open_half_requests(server.port, 50)
        closed: set[int] = set()
        deadline = time.monotonic() + 10
        while len(closed) < len(sockets) and time.monotonic() < deadline:
            for index, sock in enumerate(sockets):
                if index in closed:
                    continue
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    closed.add(index)
            time.sleep(0.2)
        for sock in sockets:
            sock.close()
        assert len(closed) == len(sockets)


def park_polls(server: ServerProcess, jobid: str, since: int, count: int = 5
               ) -> tuple[list[threading.Thread], list[Any]]:
    """`count` long polls parked on the server, each in a thread; their answers land in the
    list as they come."""
    answers: list[Any] = []

    def poll() -> None:
        answers.append(timed_get(
            f"{server.base_url}/progress/poll?jobid={jobid}&since={since}&timeout=30",
            timeout=30)[1])

    threads = [threading.Thread(target=poll) for _ in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while server.get("health")["waiters"] < count:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return threads, answers


def stop_with_sigterm(server: ServerProcess, threads: list[threading.Thread]) -> None:
    assert server.signal(signal.SIGTERM) == 0
    for thread in threads:
        thread.join(timeout=10)


def test_sigterm_answers_parked_polls_and_exits_0(tmp_path: Path) -> None:
    """Polls parked at SIGTERM once got 500s and the log errors."""
    with running_server(tmp_path / "snapshots") as server:
        version = server.get("create?jobid=j")["version"]
        threads, answers = park_polls(server, "j", version)
        stop_with_sigterm(server, threads)
        assert [answer["version"] for answer in answers] == [version] * 5
        assert "ERROR" not in server.log()
        assert list((tmp_path / "snapshots").glob("snapshot-*.msgpack"))


FAILING_SNAPSHOT_LOOP = """
import sys
import tornado_progress.__main__ as program

async def failing_loop(*args):
    raise RuntimeError("the disk went away")

program.snapshot_loop = failing_loop
program.run(sys.argv[1:])
"""


def test_a_failed_background_task_still_gets_the_final_snapshot(tmp_path: Path) -> None:
    """A failed background task once made SIGTERM re-raise its error and skip the snapshot."""
    port = free_port()
    snapshots = tmp_path / "snapshots"
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", FAILING_SNAPSHOT_LOOP, "--port", str(port),
             "--snapshot-dir", str(snapshots)], stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                timed_get(f"http://127.0.0.1:{port}/progress/health", 2)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert list(snapshots.glob("snapshot-*.msgpack"))
    assert "the disk went away" in log.read_text()


def test_write_tokens_come_from_a_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# who may write\nalpha-token\n\n  beta-token  \n")
    with running_server(tmp_path / "snapshots", "--write-tokens", str(tokens),
                        "--require-key", "--trusted-proxies", "") as server:
        base = f"{server.base_url}/progress/update?jobid=j&workid=w&current=1&total=2"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base, timeout=5)
        refused.value.close()
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as keyless:
            urllib.request.urlopen(base + "&token=beta-token", timeout=5)
        keyless.value.close()
        assert keyless.value.code == 403
        request = urllib.request.Request(base + "&key=12345678",
                                         headers={"Authorization": "Bearer alpha-token"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert "version" in json.loads(answer.read())


def test_an_empty_tokens_file_stops_the_start_with_a_message(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# nothing yet\n")
    result = subprocess.run([sys.executable, "-m", "tornado_progress", "--write-tokens",
                             str(tokens)], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "holds no token" in result.stderr


def test_sigterm_lets_polls_waiting_for_a_big_body_finish(tmp_path: Path) -> None:
    """Polls whose answer was still being built at SIGTERM once got dropped connections."""
    with running_server(tmp_path / "snapshots") as server:
        fill(server, "big", 4000, desc="x" * 1000)
        version = server.get("status?jobid=big")["version"]
        threads, answers = park_polls(server, "big", version)
        update(server, jobid="big", workid="w0", current=2, total=2)  # a change, then at once
        stop_with_sigterm(server, threads)
        assert len(answers) == 5
        assert "ERROR" not in server.log()


def update(server: ServerProcess, **fields: Any) -> Any:
    return server.get("update?" + urllib.parse.urlencode(fields))


def fill(server: ServerProcess, jobid: str, workers: int, desc: str) -> None:
    """`workers` updates over one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for index in range(workers):
            query = urllib.parse.urlencode({"jobid": jobid, "workid": f"w{index}",
                                            "current": 1, "total": 2, "desc": desc})
            connection.request("GET", f"/progress/update?{query}")
            assert connection.getresponse().read()
    finally:
        connection.close()
