"""A refused connection's client reads the refusal even when its request arrives after it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from tornado_progress import lingering
from tornado_progress.lingering import Lingering


def client_sending_late(port: int, go: threading.Event, closed: threading.Event) -> bytes:
    """Connects, sends its request once told (after the server's answer and its look for a
    request), then reads to the end once the server is done with the socket."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(5)
        go.wait(5)
        sock.sendall(b"GET /progress/health HTTP/1.1\r\nHost: x\r\n\r\n")
        closed.wait(5)
        time.sleep(0.05)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


async def refuse_one(how: str) -> bytes:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    go, closed = threading.Event(), threading.Event()
    client = loop.run_in_executor(None, client_sending_late, listener.getsockname()[1], go,
                                  closed)
    accepted, _ = await loop.sock_accept(listener)
    shutter = Lingering()
    if how == "lingering":
        shutter.close(accepted, b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
        go.set()
        await asyncio.sleep(0.05)  # the request arrives, and is read and dropped
    else:  # what the server did before: the request arrives after its look, and is not read
        accepted.send(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
        go.set()
        await asyncio.sleep(0.05)
        accepted.close()
    closed.set()
    try:
        return await asyncio.wait_for(client, 10)
    finally:
        shutter.close_all()
        listener.close()


@pytest.mark.gen_test
async def test_a_request_after_the_refusal_still_lets_the_client_read_it() -> None:
    assert await refuse_one("lingering") == b"HTTP/1.1 503 Service Unavailable\r\n\r\n"


@pytest.mark.gen_test
async def test_closing_at_once_resets_such_a_client() -> None:
    """Why the refusal lingers: closing a socket with a request unread resets it, and the
    client loses the answer."""
    with pytest.raises(ConnectionResetError):
        await refuse_one("at once")


@pytest.mark.gen_test
async def test_at_most_a_few_sockets_linger_and_none_for_long(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lingering, "MAX_LINGERING", 2)
    monkeypatch.setattr(lingering, "LINGER_S", 0.05)
    shutter = Lingering()
    pairs = [socket.socketpair() for _ in range(3)]
    for ours, _ in pairs:
        shutter.close(ours, b"no")
    assert len(shutter) == 2  # the third was closed at once
    assert pairs[2][0].fileno() == -1
    await asyncio.sleep(0.2)
    assert len(shutter) == 0 and all(ours.fileno() == -1 for ours, _ in pairs)
    for _, theirs in pairs:
        assert theirs.recv(10) == b"no"
        theirs.close()
