"""The fast path (fast_path.py) as a client on the wire sees it: it answers update, updates and
poll without a RequestHandler, and keeps what Tornado's HTTP server gives: keep-alive,
pipelining, chunked bodies, limits, and a client leaving mid-request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.iostream import IOStream
from tornado.tcpclient import TCPClient

from tests.conftest import Fetch, as_json
from tornado_progress import handlers, views, writes
from tornado_progress.model import Store
from tornado_progress.polls import PollWait

UPDATE = b"GET /progress/update?jobid=j&workid=w&current=1&total=2 HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def base_url(http_server: Any, base_url: str) -> str:
    """The server's address, with the server started (raw connections need it running)."""
    return base_url


async def connect(base_url: str) -> IOStream:
    port = int(base_url.rsplit(":", 1)[1])
    return await TCPClient().connect("127.0.0.1", port)


async def read_answer(stream: IOStream) -> tuple[int, dict[str, str], bytes]:
    head = (await stream.read_until(b"\r\n\r\n")).decode()
    status_line, *lines = head.strip().split("\r\n")
    headers = {name.lower(): value for name, _, value in
               (line.partition(": ") for line in lines)}
    body = await stream.read_bytes(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


@pytest.mark.gen_test
async def test_update_and_poll_never_reach_a_handler(fetch: Fetch,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def not_here(self: Any) -> None:
        raise AssertionError("a handler answered a fast request")

    monkeypatch.setattr(handlers.UpdateHandler, "respond", not_here)
    monkeypatch.setattr(handlers.PollHandler, "respond", not_here)
    monkeypatch.setattr(handlers.UpdatesHandler, "respond", not_here)
    assert (await fetch("update", jobid="j", workid="w", current=1, total=2)).code == 200
    assert (await fetch("updates", method="POST", body="jobid=j&workid=v&current=1&total=2"
                        )).code == 200
    assert as_json(await fetch("poll", jobid="j", since=0))["full"] is True


@pytest.mark.gen_test
async def test_keep_alive_and_pipelining(base_url: str, store: Store) -> None:
    stream = await connect(base_url)
    stream.write(UPDATE * 3)  # three requests at once, answered in order
    versions = []
    for _ in range(3):
        status, headers, body = await read_answer(stream)
        assert status == 200 and headers["content-type"].startswith("application/json")
        versions.append(json.loads(body)["version"])
    assert versions == sorted(versions) and len(set(versions)) == 3
    stream.write(UPDATE)  # the same connection, later
    assert (await read_answer(stream))[0] == 200
    stream.close()


@pytest.mark.gen_test
async def test_a_chunked_form_body(base_url: str, store: Store) -> None:
    stream = await connect(base_url)
    form = b"jobid=c&workid=w&current=3&total=4"
    stream.write(b"POST /progress/update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
                 + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in
                            (form[:10], form[10:])) + b"0\r\n\r\n")
    assert (await read_answer(stream))[0] == 200
    assert store.get("c").workers["w"].current == 3
    stream.close()


@pytest.mark.gen_test
async def test_other_methods_and_head_go_to_the_handlers(fetch: Fetch) -> None:
    head = await fetch("update", method="HEAD")
    assert head.code == 405 and head.headers["Allow"] == "GET, POST"
    put = await fetch("poll", method="PUT", body="x")
    assert put.code == 405 and "PUT is not allowed" in as_json(put)["error"]


@pytest.mark.gen_test
async def test_an_oversized_line_or_body_is_a_413_sentence(base_url: str, store: Store) -> None:
    stream = await connect(base_url)
    long_desc = b"x" * 70_000
    stream.write(b"GET /progress/update?jobid=j&workid=w&current=1&total=2&desc=" + long_desc +
                 b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await read_answer(stream)
    assert status == 413 and "the request line is" in json.loads(body)["error"]
    stream.close()
    stream = await connect(base_url)
    stream.write(b"POST /progress/update HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\n" + b"a" * 1000)
    status, headers, body = await read_answer(stream)
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("the request body is 70000 bytes")
    assert store.jobs == {}


@pytest.mark.gen_test
async def test_a_client_leaving_mid_request_costs_nothing(base_url: str, fetch: Fetch) -> None:
    stream = await connect(base_url)
    stream.write(b"POST /progress/update HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                 b"jobid=j&wor")
    stream.close()
    assert (await fetch("update", jobid="j", workid="w", current=1, total=2)).code == 200
    assert (await fetch("status", jobid="j")).code == 200


@pytest.mark.gen_test
async def test_a_fault_of_the_servers_own_is_a_500_sentence(
        fetch: Fetch, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> bytes:
        raise RuntimeError("a bug")

    await fetch("update", jobid="j", workid="w", current=1, total=2)
    monkeypatch.setattr(writes, "apply_update", broken)
    monkeypatch.setattr(PollWait, "answer", broken)
    for answer in (await fetch("update", jobid="j", workid="w", current=1, total=2),
                   await fetch("poll", jobid="j", since=0)):
        assert answer.code == 500
        assert as_json(answer)["error"] == views.SERVER_FAILED
    assert any("failed" in record.getMessage() and record.exc_info for record in caplog.records)


@pytest.mark.gen_test
@pytest.mark.parametrize("fast_path", [True, False], indirect=True, ids=["fast", "handlers"])
@pytest.mark.parametrize(("version", "connection", "answered", "kept"), [
    ("HTTP/1.1", None, None, True),
    ("HTTP/1.1", "close", "close", False),
    ("HTTP/1.0", None, None, False),
    ("HTTP/1.0", "keep-alive", "Keep-Alive", True),
])
async def test_keep_alive_or_close_as_the_client_asked(
        base_url: str, fast_path: bool, version: str, connection: str | None,
        answered: str | None, kept: bool) -> None:
    """The fast path writes its answers' heads itself: the same Connection header as Tornado's
    write_headers gives the handlers, and the connection kept or closed alike."""
    stream = await connect(base_url)
    asked = f"Connection: {connection}\r\n" if connection else ""
    request = (f"GET /progress/update?jobid=j&workid=w&current=1&total=2 {version}\r\n"
               f"Host: x\r\n{asked}\r\n").encode()
    stream.write(request)
    status, headers, body = await read_answer(stream)
    assert status == 200 and "version" in json.loads(body)
    assert headers.get("connection") == answered
    if kept:
        stream.write(request)
        assert (await read_answer(stream))[0] == 200
        stream.close()
    else:
        assert await stream.read_until_close() == b""
