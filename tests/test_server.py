"""The HTTP server's defences (issue 8, items 1, 7 and 8): sentences for the requests Tornado
refuses by itself, header and idle timeouts, the connection cap and its eviction of the
longest-waiting connection, and the back-off when accept() runs out of descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
import time
from typing import Any

import pytest
from tornado import gen
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from tests.conftest import Fetch, as_json
from tornado_progress.config import Settings
from tornado_progress.model import Store
from tornado_progress.server import KEEP_LISTENING_BYTES, ProgressServer, SentenceStream

RECV_TIMEOUT_S = 5.0
UPDATE = b"GET /progress/update?jobid=j&workid=w&current=1&total=2 HTTP/1.1\r\nHost: x\r\n\r\n"


def exchange(port: int, data: bytes, timeout: float = RECV_TIMEOUT_S) -> bytes:
    """Sends `data` on a new connection and reads until the server closes it."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        sock.settimeout(timeout)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


async def in_thread(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


MANY_FIELDS = "&".join(f"f{index}=1" for index in range(1001))


@pytest.mark.gen_test
@pytest.mark.parametrize(("request_bytes", "sentence"), [
    (f"GET /progress/update?{MANY_FIELDS} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
     "too many parameters"),
    (b"GET /progress/health HTTP/1.1\r\nHost: bad host!\r\n\r\n", "Host header"),
    (b"POST /progress/update HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
     "not well-formed"),
    (b"GET /progress/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "not well-formed"),
    (b"GET /progress/health HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", "not well-formed"),
])
async def test_requests_tornado_refuses_get_a_sentence(
        http_server: ProgressServer, base_url: str, request_bytes: bytes, sentence: str) -> None:
    """These once answered 400 with an empty body."""
    answer = await in_thread(exchange, port_of(base_url), request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"application/json" in head
    assert sentence in json.loads(body)["error"]


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("settings", [{"header_timeout": 0.3, "idle_timeout": 30}],
                         indirect=True)
async def test_a_connection_that_never_finishes_its_headers_is_closed(
        http_server: ProgressServer, base_url: str, settings: Settings) -> None:
    """500 slowloris connections once stayed open indefinitely."""
    started = time.monotonic()
    answer = await in_thread(exchange, port_of(base_url),
                             b"GET /progress/health HTTP/1.1\r\nHost: x\r\n")
    assert answer == b""
    assert time.monotonic() - started < RECV_TIMEOUT_S


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("settings", [{"header_timeout": 0.2, "idle_timeout": 30}],
                         indirect=True)
async def test_a_kept_alive_connection_waits_the_idle_timeout(
        http_server: ProgressServer, base_url: str, settings: Settings) -> None:
    def two_requests() -> list[bytes]:
        request = b"GET /progress/health HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port_of(base_url))) as sock:
            sock.settimeout(RECV_TIMEOUT_S)
            answers = []
            for _ in range(2):
                sock.sendall(request)
                answers.append(sock.recv(65536))
                time.sleep(0.5)  # longer than the header timeout, shorter than the idle one
            return answers

    for answer in await in_thread(two_requests):
        assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.gen_test
async def test_a_kept_alive_connection_keeps_tcp_nodelay(http_server: ProgressServer) -> None:
    """Tornado turns TCP_NODELAY off after each answer and on again at the next: two system
    calls per request that the server spares."""
    with socket.create_connection(("127.0.0.1", _listening_port(http_server))) as sock:
        sock.settimeout(RECV_TIMEOUT_S)
        for target in ("update?jobid=j&workid=w&current=1&total=2", "health"):  # both paths
            sock.sendall(f"GET /progress/{target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert (await in_thread(sock.recv, 65536)).startswith(b"HTTP/1.1 200 ")
            await _until(lambda: http_server.table.waiting)  # answered, waiting for the next
            (connection,) = http_server.table.open.values()
            assert connection.stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


POST_UPDATE = (b"POST /progress/update HTTP/1.1\r\nHost: x\r\nContent-Length: 34\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
               b"jobid=j&workid=w&current=1&total=2")


@pytest.mark.gen_test
@pytest.mark.parametrize("fast_path", [True, False], indirect=True, ids=["fast", "handlers"])
async def test_a_request_that_came_whole_sets_no_timer(
        http_server: ProgressServer, monkeypatch: pytest.MonkeyPatch, fast_path: bool) -> None:
    """The header and idle timeouts are the connection table's: Tornado, left to itself, sets
    and cancels a timer for every request's headers (of an hour when given no timeout), and
    one for a body that it already holds whole."""
    timers = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        timers.append(args)
        return with_timeout(*args, **kwargs)

    with_timeout = gen.with_timeout
    monkeypatch.setattr(gen, "with_timeout", counted)
    with socket.create_connection(("127.0.0.1", _listening_port(http_server))) as sock:
        sock.settimeout(RECV_TIMEOUT_S)
        for request in (UPDATE, POST_UPDATE, UPDATE, POST_UPDATE):
            sock.sendall(request)
            assert (await in_thread(sock.recv, 65536)).startswith(b"HTTP/1.1 200 ")
    assert timers == []


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("settings", [{"body_timeout": 0.3}], indirect=True)
async def test_a_body_that_does_not_come_is_timed_out(
        http_server: ProgressServer, store: Store, settings: Settings) -> None:
    started = time.monotonic()
    answer = await in_thread(exchange, _listening_port(http_server), POST_UPDATE[:-5])
    assert answer == b"" and time.monotonic() - started < RECV_TIMEOUT_S
    assert store.jobs == {}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"max_connections": 20}], indirect=True)
async def test_half_open_connections_make_room_for_real_requests(
        fetch: Fetch, http_server: ProgressServer) -> None:
    """1,100 half-open connections once locked everyone out."""
    sockets = []
    try:
        for _ in range(40):
            sock = socket.socket()
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.connect(("127.0.0.1", _listening_port(http_server)))
            sockets.append(sock)
        await _until(lambda: http_server.connection_count >= 20)
        for _ in range(5):
            started = time.monotonic()
            answer = await fetch("update", jobid="j", workid="w", current=1, total=2)
            assert answer.code == 200
            assert time.monotonic() - started < 2
        assert http_server.connection_count <= 20
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"max_connections": 3}], indirect=True)
async def test_when_every_connection_is_busy_a_newcomer_gets_503(
        fetch: Fetch, http_server: ProgressServer) -> None:
    await fetch("create", jobid="j")
    version = as_json(await fetch("status", jobid="j"))["version"]
    polls = [asyncio.ensure_future(fetch("poll", jobid="j", since=version, timeout=20))
             for _ in range(3)]
    await _until(lambda: http_server.connection_count == 3 and http_server.table.busy == 3)
    answer = await in_thread(exchange, _listening_port(http_server),
                             b"GET /progress/health HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert "--max-connections" in json.loads(body)["error"]
    AsyncHTTPClient().close()
    for poll in polls:
        poll.cancel()


class FullSocket:
    """A listening socket whose accept() fails for lack of descriptors, `failures` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def fileno(self) -> int:
        return 99

    def accept(self) -> tuple[socket.socket, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(errno.EMFILE, "Too many open files")
        raise BlockingIOError


@pytest.mark.gen_test
async def test_out_of_descriptors_pauses_accepting_and_logs_once(
        http_server: ProgressServer, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The server once spun at full CPU writing a traceback per failed accept()."""
    paused: list[Any] = []
    monkeypatch.setattr("tornado.ioloop.IOLoop.remove_handler", lambda self, fd: None)
    monkeypatch.setattr("tornado.ioloop.IOLoop.call_later",
                        lambda self, delay, callback, *args: paused.append((delay, callback)))
    listener = FullSocket(failures=1000)
    http_server._accepting[99] = True
    caplog.set_level(logging.WARNING, "tornado_progress.server")
    for _ in range(1000):
        http_server._accepting[99] = True
        http_server._accept_ready(listener, 99, 0)  # type: ignore[arg-type]
    assert listener.calls == 1000  # one attempt per readiness event, then a rest
    assert len(paused) == 1000 and all(delay > 0 for delay, _ in paused)
    lines = [record for record in caplog.records if "accept() failed" in record.message]
    assert len(lines) == 1
    assert "Too many open files" in lines[0].message


def _listening_port(server: ProgressServer) -> int:
    sock = next(iter(server._sockets.values()))
    port: int = sock.getsockname()[1]
    return port


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"send_timeout": 0.5}], indirect=True)
async def test_answers_that_clients_do_not_read_are_dropped(
        http_server: ProgressServer, store: Store, settings: Settings) -> None:
    """Clients that asked for a big answer and never read it once held it for ever."""
    for index in range(40_000):
        store.update("big", f"worker-{index}", index, 40_000, "x" * 40, True)
    sockets = []
    for _ in range(3):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", _listening_port(http_server)))
        sock.sendall(b"GET /progress/status?jobid=big HTTP/1.1\r\nHost: x\r\n\r\n")
        sockets.append(sock)
    try:
        await _until(lambda: http_server.table.closed_slow == 3, timeout=15)
        assert http_server.connection_count == 0
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"max_connections_per_address": 5,
                                       "trusted_proxies": ()}], indirect=True)
async def test_one_address_holds_at_most_its_share_of_connections(
        fetch: Fetch, http_server: ProgressServer, settings: Settings) -> None:
    half_open = [socket.create_connection(("127.0.0.1", _listening_port(http_server)))
                 for _ in range(12)]
    try:
        await _until(lambda: http_server.connection_count >= 5)
        assert (await fetch("health")).code == 200  # its own oldest waiting one made room
        assert http_server.connection_count <= 5
        await fetch("create", jobid="j")
        version = as_json(await fetch("status", jobid="j"))["version"]
        polls = [asyncio.ensure_future(fetch("poll", jobid="j", since=version, timeout=20))
                 for _ in range(5)]
        await _until(lambda: http_server.table.busy == 5)
        answer = await in_thread(exchange, _listening_port(http_server),
                                 b"GET /progress/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"--max-connections-per-address" in answer
        AsyncHTTPClient().close()
        for poll in polls:
            poll.cancel()
    finally:
        for sock in half_open:
            sock.close()


@pytest.mark.gen_test
async def test_an_idle_stream_keeps_listening_after_buffering_what_nobody_asked_for() -> None:
    """A viewer's next poll arrives before the server asks for it: the stream buffers it and
    stays registered for reads (Tornado's own IOStream stops listening there, and starts
    again when the poll parks); the poll is then read from the buffer as usual."""
    async def after_unasked_bytes(kind: type[IOStream]) -> tuple[bool, bytes]:
        ours, theirs = socket.socketpair()
        stream = kind(ours)
        stream.set_close_callback(lambda: None)  # idle, listening for a close
        theirs.sendall(b"GET /progress/poll HTTP/1.1\r\n\r\n")
        for _ in range(20):  # loop turns until the stream has read the bytes
            await asyncio.sleep(0.005)
            if stream._read_buffer_size:
                break
        listening = bool(stream._state is not None and stream._state & IOLoop.READ)
        request = await stream.read_until(b"\r\n\r\n")
        stream.close()
        theirs.close()
        return listening, request

    assert await after_unasked_bytes(SentenceStream) == (
        True, b"GET /progress/poll HTTP/1.1\r\n\r\n")
    assert (await after_unasked_bytes(IOStream))[0] is False  # what the override is for


@pytest.mark.gen_test
async def test_a_stream_stops_listening_once_it_holds_more_than_a_little_unasked() -> None:
    """A client that sends far ahead fills the server's buffer no further than a few reads:
    past KEEP_LISTENING_BYTES the stream stops listening, and TCP holds the client back."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    stream = SentenceStream(ours, read_chunk_size=4096)
    stream.set_close_callback(lambda: None)
    sent = 0
    for _ in range(200):
        with contextlib.suppress(BlockingIOError):
            sent += theirs.send(b"x" * 4096)
        await asyncio.sleep(0.002)
        if stream._state is not None and not stream._state & IOLoop.READ:
            break
    assert stream._state is not None and not stream._state & IOLoop.READ
    held = stream._read_buffer_size
    assert KEEP_LISTENING_BYTES < held <= KEEP_LISTENING_BYTES + 4096
    theirs.send(b"y" * 4096)  # waits in the kernel now
    await asyncio.sleep(0.02)
    assert stream._read_buffer_size == held and sent == held
    stream.close()
    theirs.close()
