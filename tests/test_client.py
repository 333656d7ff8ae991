"""tornado_progress.client against the real server process: throttling and batches counted on
the server's side (its access log), a refused line of a batch, a batch too large, a dead
server that costs the worker nothing, the final state at close and at exit, a server restart,
a wrong key, create_job and the spellings of a server's address."""

from __future__ import annotations

import http.server
import json
import logging
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import pytest

from bench.client_bench import bare_loop, reporting_loop
from tests.serverproc import ServerProcess, free_port, running_server
from tornado_progress import client
from tornado_progress.client import (
    Job,
    ProgressError,
    Reporter,
    create_job,
    normalise_server,
    progress_for,
    retry,
    sender,
    wire,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("client") / "snapshots") as process:
        yield process


def workers(server: ServerProcess, jobid: str) -> dict[str, dict[str, Any]]:
    job = server.get(f"status?jobid={quote(jobid)}")
    return {worker["workid"]: worker for worker in job["workers"]}


def wait_for(condition: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    """Polls `condition` (the server's status, typically) until it holds; fails after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


def has_state(server: ServerProcess, jobid: str, workid: str, current: float,
              ok: bool = True) -> Callable[[], bool]:
    def check() -> bool:
        try:
            worker = workers(server, jobid).get(workid)
        except Exception:
            return False
        return worker is not None and worker["current"] == current and worker["ok"] == ok
    return check


def client_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "tornado_progress.client"]


# -- the package ----------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["tornado_progress.client", "tornado_progress.client.tqdm"])
def test_importing_the_client_imports_no_server_dependency(module: str) -> None:
    code = (f"import sys, json; import {module}; print(json.dumps(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('tornado', 'cairo', 'msgpack'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("spelling", [
    "http://127.0.0.1:8000", "http://127.0.0.1:8000/", "http://127.0.0.1:8000/progress",
    "http://127.0.0.1:8000/progress/", " HTTP://127.0.0.1:8000/progress/ ", "127.0.0.1:8000",
])
def test_every_usual_spelling_of_a_server_is_one_base_url(spelling: str) -> None:
    assert normalise_server(spelling) == "http://127.0.0.1:8000"


def test_a_path_prefix_and_https_are_kept() -> None:
    assert normalise_server("https://example.org/tools/progress/") == "https://example.org/tools"
    assert normalise_server("https://example.org:443/") == "https://example.org"
    assert normalise_server("http://[::1]:8000/progress/") == "http://[::1]:8000"


@pytest.mark.parametrize("spelling", ["ftp://host/", "http://", "http://host:port/", ""])
def test_a_server_that_is_no_http_url_is_refused_at_once(spelling: str) -> None:
    with pytest.raises(ValueError, match="server must be a URL"):
        Reporter(spelling, "job", "w")


def test_backoff_doubles_to_its_cap_and_retry_after_wins() -> None:
    assert [retry.backoff(n) for n in (1, 2, 3, 7, 8, 100)] == [0.5, 1, 2, 30, 30, 30]
    assert retry.retry_after("3", 1) == 3.0
    assert retry.retry_after("100000", 1) == retry.RETRY_AFTER_MAX_S
    assert retry.retry_after(None, 2) == 1.0
    assert retry.retry_after("soon", 2) == 1.0
    assert retry.retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 1) == 0.0


def test_numbers_go_as_the_server_reads_them() -> None:
    assert wire.form("jobid=j&workid=w", (7, 50.0, "a b&c", False)) == \
        b"jobid=j&workid=w&current=7&total=50&desc=a+b%26c&ok=0"
    assert wire.number(2.5) == "2.5" and wire.number(1e20) == "1e+20"


def test_a_batchs_answer_is_read_line_by_line() -> None:
    ok = b'{"version":7,"truncated":false}\n'
    assert wire.line_answers(ok * 3, 3) == [None] * 3
    assert wire.line_answers(ok + b'{"error": "a sentence"}\n' + ok, 3) == \
        [None, ("a sentence", 400), None]
    assert wire.line_answers(b'{"error": "full", "status": 429}\n', 1) == [("full", 429)]
    assert wire.line_answers(b'{"version": 7, "truncated": true}\n', 1) == [None]
    assert wire.line_answers(ok * 2, 3) is None  # not one line an update
    assert wire.line_answers(b"<html>\n<body>\n", 2) is None


def test_a_next_request_waits_the_interval_rounded_up_to_a_sixteenth() -> None:
    assert sender.next_slot(100.01, 1.0) == 101.0625
    assert sender.next_slot(100.0, 1.6) == pytest.approx(101.6)
    assert sender.next_slot(100.01, 0) == 100.01
    for now in (0.3, 17.77, 12345.6789):
        assert now + 0.5 <= sender.next_slot(now, 0.5) < now + 0.5 + 0.5 / 16


def test_workid_is_the_mpi_rank_else_host_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in client.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert client.default_workid().endswith(f":{os.getpid()}")
    monkeypatch.setenv("SLURM_PROCID", "5")
    assert progress_for("http://127.0.0.1:1", "job").workid == "5"
    monkeypatch.setenv("PMI_RANK", "4")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    assert progress_for("http://127.0.0.1:1", "job").workid == "3"
    assert progress_for("http://127.0.0.1:1", "job", "named").workid == "named"


# -- create_job -------------------------------------------------------------------------------


def test_create_job_with_a_jobid_answers_it_and_its_urls(server: ServerProcess) -> None:
    job = create_job(server.base_url + "/progress/", desc="reduction", jobid="me:run 1",
                     maxage=3600.5, workers=4)
    assert job == Job("me:run 1", job.show_url, job.render_url, job.status_url)
    assert job.show_url.startswith(server.base_url + "/progress/show?jobid=")
    status = server.get(job.status_url.split("/progress/")[1])
    assert status["desc"] == "reduction" and status["summary"]["expected"] == 4


def test_create_job_without_a_jobid_gets_one_from_the_server(server: ServerProcess) -> None:
    first, second = create_job(server.base_url), create_job(server.base_url + "/")
    assert len(first.jobid) == 22 and first.jobid != second.jobid
    assert server.get(f"status?jobid={first.jobid}")["workers"] == []


def test_create_job_raises_the_servers_sentence(server: ServerProcess) -> None:
    with pytest.raises(ProgressError, match="workers") as refused:
        create_job(server.base_url, jobid="bad", workers=0)
    assert refused.value.status == 400
    create_job(server.base_url, jobid="locked", key="rightkey123")
    with pytest.raises(ProgressError) as wrong_key:
        create_job(server.base_url, jobid="locked", key="wrongkey123")
    assert wrong_key.value.status == 403
    with pytest.raises(ProgressError, match="cannot reach") as dead:
        create_job(f"http://127.0.0.1:{free_port()}", timeout=2)
    assert dead.value.status is None


# -- reporting ----------------------------------------------------------------------------------


def test_updates_are_coalesced_and_the_last_state_arrives(tmp_path: Path) -> None:
    """200 updates in about a second with min_interval 0.5: the server sees 2 to 4 requests
    (at 0, 0.5, 1.0 s, and one more for a state newer than the last of those)."""
    with running_server(tmp_path / "snapshots", "--access-log") as server:
        reporter = Reporter(server.base_url, "coalesced", "w", min_interval=0.5)
        start = time.monotonic()
        for i in range(200):
            reporter.update(i, 199, desc=f"step {i}")
            time.sleep(max(0.0, start + (i + 1) * 0.005 - time.monotonic()))  # pacing
        wait_for(has_state(server, "coalesced", "w", 199))
        requests = server.log().count("POST /progress/update")
        assert workers(server, "coalesced")["w"]["desc"] == "step 199"
        reporter.close()
    assert 2 <= requests <= 4, requests


def test_close_sends_the_last_state_at_once(server: ServerProcess) -> None:
    reporter = Reporter(server.base_url, "closing", "w", min_interval=60)
    for i in range(1, 101):
        reporter.update(i, 100, desc="almost")  # the first goes at once, the rest wait
    assert reporter.close(timeout=5) is True
    assert workers(server, "closing")["w"]["current"] == 100  # no waiting: close flushed
    reporter.update(1, 100)  # ignored after close
    assert reporter.close() is True


def test_desc_none_keeps_the_text_and_fail_keeps_the_numbers(server: ServerProcess) -> None:
    reporter = Reporter(server.base_url, "texts", "w", min_interval=0)
    reporter.update(3, 10, desc="flagging")
    reporter.update(4, 10)
    reporter.flush()
    assert workers(server, "texts")["w"]["desc"] == "flagging"
    reporter.fail("disk full")
    reporter.close()
    worker = workers(server, "texts")["w"]
    assert (worker["current"], worker["ok"], worker["desc"]) == (4, False, "disk full")


def test_leaving_a_with_block_by_an_exception_marks_the_worker_failed(
        server: ServerProcess) -> None:
    with pytest.raises(ZeroDivisionError), Reporter(server.base_url, "with", "w") as reporter:
        reporter.update(2, 5)
        print(1 / 0)
    worker = workers(server, "with")["w"]
    assert (worker["current"], worker["ok"], worker["desc"]) == (2, False, "ZeroDivisionError")


def test_reporters_of_one_server_share_one_sender_thread(server: ServerProcess) -> None:
    reporters = [Reporter(server.base_url + "/progress", "shared", f"w{k}") for k in range(50)]
    for k, reporter in enumerate(reporters):
        reporter.update(k, 49)
    assert client.flush_all(timeout=10)
    senders = [thread for thread in threading.enumerate()
               if thread.name == f"tornado_progress.client {server.base_url}"]
    assert len(senders) == 1 and senders[0].daemon
    assert len(workers(server, "shared")) == 50


def requests_in(log: str, jobid: str) -> tuple[int, int]:
    """The batches of `jobid` (`updates?jobid=...`) and the single updates in an access log."""
    return (log.count(f"POST /progress/updates?{urlencode({'jobid': jobid})} "),
            log.count("POST /progress/update "))


def test_50_reporters_of_one_job_share_one_request_a_round(tmp_path: Path) -> None:
    """50 reporters updated every 20 ms for a second, interval 0.2 s: one by one they would
    make some 300 requests; in batches, a few per round. Every final state arrives."""
    with running_server(tmp_path / "snapshots", "--access-log") as server:
        reporters = [Reporter(server.base_url, "batched", f"w{k:02}", min_interval=0.2)
                     for k in range(50)]
        start, rounds = time.monotonic(), 0
        while time.monotonic() - start < 1.0:
            rounds += 1
            for reporter in reporters:
                reporter.update(rounds, 100, desc=f"round {rounds}")
            time.sleep(0.02)
        assert client.flush_all(timeout=10)
        found = workers(server, "batched")  # after the answers: their log lines are written
        batches, singles = requests_in(server.log(), "batched")
    assert all(found[f"w{k:02}"]["current"] == rounds for k in range(50)), found
    assert {worker["desc"] for worker in found.values()} == {f"round {rounds}"}
    assert batches >= 5 and batches + singles <= 40, (batches, singles)


def updated_while_down(reporters: list[Reporter], caplog: pytest.LogCaptureFixture) -> None:
    """Each reporter's first state, given while its server is down: the sender keeps them all
    and sends them in one round when the server answers."""
    for reporter in reporters:
        reporter.update(5, 10)
    wait_for(lambda: any("cannot be reached" in line for line in client_lines(caplog)))


def test_two_jobs_kept_while_the_server_was_down_go_in_two_requests(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    reporters = [Reporter(f"http://127.0.0.1:{port}", jobid, f"w{k}", min_interval=60)
                 for k in range(3) for jobid in ("pair/a", "pair b")]
    updated_while_down(reporters, caplog)
    with running_server(tmp_path / "snapshots", "--access-log", port=port) as server:
        for reporter in reporters:
            wait_for(has_state(server, reporter.jobid, reporter.workid, 5))
        log = server.log()
    assert requests_in(log, "pair/a") == (1, 0) and requests_in(log, "pair b") == (1, 0), log
    assert all(reporter.close() for reporter in reporters)


def test_a_refused_line_of_a_batch_is_logged_and_the_others_arrive(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The first line creates the job with its key; the intruder's line, last, is refused."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    keyed = [Reporter(url, "half-keyed", f"w{k}", key="rightkey123") for k in range(4)]
    intruder = Reporter(url, "half-keyed", "intruder", key="wrongkey123")
    updated_while_down([*keyed, intruder], caplog)
    with running_server(tmp_path / "snapshots", "--access-log", port=port) as server:
        for reporter in keyed:
            wait_for(has_state(server, "half-keyed", reporter.workid, 5))
        assert intruder.close() is True  # refused counts as done: retrying cannot help
        assert sorted(workers(server, "half-keyed")) == ["w0", "w1", "w2", "w3"]
        assert requests_in(server.log(), "half-keyed") == (1, 0)
        assert all(reporter.close() for reporter in keyed)
    refused = [line for line in client_lines(caplog) if "refused the update" in line]
    assert len(refused) == 1, refused
    assert "'intruder'" in refused[0] and "key" in refused[0] and "dropped" in refused[0]
    assert "wrongkey123" not in refused[0]


def test_a_batch_too_large_for_the_server_is_split(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """20 lines of some 200 bytes against --max-request-bytes 1000: 413, then halves until
    each batch fits; nothing is lost and nothing is logged as refused."""
    port = free_port()
    reporters = [Reporter(f"http://127.0.0.1:{port}", "split", f"w{k:02}", min_interval=60)
                 for k in range(20)]
    for reporter in reporters:
        reporter.update(5, 10, desc="x" * 150)
    wait_for(lambda: any("cannot be reached" in line for line in client_lines(caplog)))
    with running_server(tmp_path / "snapshots", "--access-log", "--max-request-bytes", "1000",
                        port=port) as server:
        for reporter in reporters:
            wait_for(has_state(server, "split", reporter.workid, 5))
        batches, singles = requests_in(server.log(), "split")
    assert batches >= 5 and singles == 0, (batches, singles)
    assert not [line for line in client_lines(caplog) if "refused the update" in line]
    assert all(reporter.close() for reporter in reporters)


class OlderServer(http.server.BaseHTTPRequestHandler):
    """A server from before `updates`: 404 for it, every `update` recorded."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, body))
        found = self.path == "/progress/update"
        answer = b'{"version":1,"truncated":false}\n' if found else b'{"error":"no such page"}\n'
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_server_without_updates_gets_one_update_per_request(
        caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    reporters = [Reporter(f"http://127.0.0.1:{port}", "older", f"w{k}", min_interval=60)
                 for k in range(3)]
    updated_while_down(reporters, caplog)
    older = http.server.ThreadingHTTPServer(("127.0.0.1", port), OlderServer)
    threading.Thread(target=older.serve_forever, daemon=True).start()
    try:
        assert all(reporter.close() for reporter in reporters)
    finally:
        older.shutdown()
        older.server_close()
    assert [path for path, _ in OlderServer.seen] == \
        ["/progress/updates?jobid=older"] + ["/progress/update"] * 3
    assert sorted(body for _, body in OlderServer.seen[1:]) == [
        f"jobid=older&workid=w{k}&current=5&total=10&desc=".encode() for k in range(3)]
    assert "one update per request" in client_lines(caplog)[-1]


def slowdown(reporter: Reporter, pairs: int = 9, items: int = 150) -> float:
    """The median, over pairs of runs, of how much longer the loop takes with `reporter`:
    the median shrugs off the other processes of a shared machine, which a mean does not."""
    ratios = sorted(reporting_loop(items, reporter) / bare_loop(items) for _ in range(pairs))
    return ratios[pairs // 2] - 1


def test_a_dead_server_costs_the_loop_almost_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "tornado_progress.client")
    reporter = Reporter(f"http://127.0.0.1:{free_port()}", "dead", "w", min_interval=0.05)
    # Up to three measurements: a noisy neighbour can spoil one, a slow client spoils all.
    measured = []
    for _ in range(3):
        measured.append(slowdown(reporter))
        if measured[-1] < 0.05:
            break
    assert min(measured) < 0.05, [f"{value:.1%}" for value in measured]
    start = time.monotonic()
    assert reporter.close(timeout=5) is False  # still pending: the server never answered
    assert time.monotonic() - start < 2  # a server known down does not hold close up
    lines = client_lines(caplog)
    assert 1 <= len(lines) <= 3, lines
    assert "cannot be reached" in lines[0]


def test_a_kept_alive_connection_the_server_closed_is_replaced_quietly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "tornado_progress.client")
    with running_server(tmp_path / "snapshots", "--idle-timeout", "0.2") as server:
        reporter = Reporter(server.base_url, "idle", "w", min_interval=0)
        reporter.update(1, 3)
        assert reporter.flush() is True
        connection = sender._senders[reporter.target]._connection.connection
        assert connection is not None and connection.sock is not None
        readable, _, _ = select.select([connection.sock], [], [], DEADLINE_S)  # the close
        assert readable and connection.sock.recv(1) == b""
        reporter.update(2, 3)
        assert reporter.close() is True
        assert workers(server, "idle")["w"]["current"] == 2
    assert client_lines(caplog) == []


def test_a_wrong_key_is_logged_once_and_the_worker_goes_on(
        server: ServerProcess, caplog: pytest.LogCaptureFixture) -> None:
    create_job(server.base_url, jobid="keyed", key="rightkey123")
    reporter = Reporter(server.base_url, "keyed", "w", key="wrongkey123", min_interval=0)
    reporter.update(1, 10)
    assert reporter.flush() is True  # refused counts as done: retrying cannot help
    reporter.update(2, 10)
    assert reporter.close() is True
    lines = client_lines(caplog)
    assert len(lines) == 1, lines
    assert "403" in lines[0] and "key" in lines[0] and "dropped" in lines[0]
    assert "wrongkey123" not in lines[0]
    assert workers(server, "keyed") == {}
    good = Reporter(server.base_url, "keyed", "w", key="rightkey123")
    good.update(3, 10)
    good.close()
    assert workers(server, "keyed")["w"]["current"] == 3


def test_a_write_token_goes_as_a_bearer_header(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# writers\nsecret-token-1\n")
    with running_server(tmp_path / "snapshots", "--write-tokens", str(tokens)) as server:
        job = create_job(server.base_url, jobid="tokened", token="secret-token-1")
        with pytest.raises(ProgressError) as refused:
            create_job(server.base_url, jobid="tokened")
        assert refused.value.status == 401
        with Reporter(server.base_url, job.jobid, "w", token="secret-token-1") as reporter:
            reporter.update(5, 6)
        with Reporter(server.base_url, job.jobid, "intruder") as intruder:
            intruder.update(1, 6)
        assert sorted(workers(server, "tokened")) == ["w"]
    assert ["401" in line and "intruder" in line for line in client_lines(caplog)] == [True]


def test_the_pending_state_arrives_after_a_server_restart(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    first = ServerProcess(tmp_path / "snapshots", port).start()
    try:
        reporter = Reporter(first.base_url, "restart", "w", min_interval=0.1)
        reporter.update(1, 10)
        wait_for(has_state(first, "restart", "w", 1))
    finally:
        assert first.signal(signal.SIGTERM) == 0
    reporter.update(7, 10, desc="while the server was away")
    wait_for(lambda: any("cannot be reached" in line for line in client_lines(caplog)))
    with running_server(tmp_path / "snapshots", port=port) as second:
        wait_for(has_state(second, "restart", "w", 7))
        assert workers(second, "restart")["w"]["desc"] == "while the server was away"
        reporter.close()


EXIT_SCRIPT = """
import sys
from tornado_progress.client import Reporter
reporter = Reporter(sys.argv[1], "at-exit", sys.argv[2], min_interval=60)
for i in range(1, 51):
    reporter.update(i, 50, desc="ended without close")
"""


def test_the_last_state_is_sent_at_interpreter_exit(server: ServerProcess) -> None:
    subprocess.run([sys.executable, "-c", EXIT_SCRIPT, server.base_url, "script"], check=True,
                   cwd=ROOT, timeout=30)
    worker = workers(server, "at-exit")["script"]  # no waiting: the child flushed as it ended
    assert (worker["current"], worker["desc"]) == (50, "ended without close")


def report_without_close(base_url: str, workid: str) -> None:
    reporter = Reporter(base_url, "at-exit", workid, min_interval=60)
    for i in range(1, 51):
        reporter.update(i, 50)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_sends_its_own_last_state_as_it_ends(server: ServerProcess) -> None:
    """A multiprocessing child started by fork ends with os._exit (no atexit); the client's
    multiprocessing finalizer flushes it. The parent's reporter keeps working meanwhile."""
    parent = Reporter(server.base_url, "at-exit", "parent", min_interval=0)
    parent.update(1, 2)
    parent.flush()
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=report_without_close, args=(server.base_url, f"c{k}"))
                for k in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    found = workers(server, "at-exit")
    assert all(found[f"c{k}"]["current"] == 50 for k in range(3)), found
    parent.update(2, 2)
    assert parent.close() is True
    assert workers(server, "at-exit")["parent"]["current"] == 2


# -- the examples in docs/examples ---------------------------------------------------------------


def run_example(name: str, server: ServerProcess, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / name), server.base_url],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_example_client_basic(server: ServerProcess) -> None:
    out = run_example("client_basic.py", server)
    jobid = out.split("jobid=")[1].split()[0]
    job = server.get(f"status?jobid={jobid}")
    assert job["summary"]["done"] == 1 and job["summary"]["workers"] == 1


def test_example_client_tqdm_pool(server: ServerProcess) -> None:
    out = run_example("client_tqdm_pool.py", server)
    jobid = out.split("jobid=")[1].split()[0]
    summary = server.get(f"status?jobid={jobid}")["summary"]
    assert summary["done"] == summary["expected"] == 4, summary


def test_example_client_mpi_takes_the_rank_from_the_environment(server: ServerProcess) -> None:
    ranks = [subprocess.Popen(
        [sys.executable, str(ROOT / "docs" / "examples" / "client_mpi.py"), server.base_url],
        cwd=ROOT, env={**os.environ, "OMPI_COMM_WORLD_RANK": str(rank),
                       "PROGRESS_JOBID": "mpi-example"}, stdout=subprocess.DEVNULL)
        for rank in range(3)]
    assert [rank.wait(60) for rank in ranks] == [0, 0, 0]
    found = workers(server, "mpi-example")
    assert sorted(found) == ["0", "1", "2"]
    assert all(worker["state"] == "done" for worker in found.values()), found


def test_a_line_refused_for_a_limit_is_kept_and_sent_again(tmp_path: Path) -> None:
    """A batch line answered with a limit's 429 (the job's workers, here) is kept and sent
    again later, as a single update answered 429 would be, not dropped."""
    with running_server(tmp_path / "snapshots", "--max-workers-per-job", "5") as server:
        reporters = [Reporter(server.base_url, "j", f"w{index}", min_interval=0.05)
                     for index in range(8)]
        for reporter in reporters:
            reporter.update(1, 2)
        sent = [reporter.flush(timeout=1) for reporter in reporters]
        assert sent.count(True) == 5 and sent.count(False) == 3  # three kept, retrying
        assert len(server.get("status?jobid=j")["workers"]) == 5
        for reporter in reporters:
            reporter.close(timeout=0)
