"""`text` through HTTP: a frame at once, a followed view that draws again at each change and
ends when the job is deleted or its timeout passes; and a real `curl -N` and `tornado-progress
watch` against the real server."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.conftest import Fetch, as_json
from tests.serverproc import running_server

FRAME_WAIT_S = 5.0


@pytest.mark.gen_test
async def test_text_is_a_terminal_frame(fetch: Fetch) -> None:
    await fetch("update", jobid="j", workid="w1", current=1, total=4, desc="hello")
    answer = await fetch("text", jobid="j", width=40)
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    lines = answer.body.decode().splitlines()
    assert lines[0] == "j  25%  ETA —" and lines[-1].startswith("w1 ")
    assert "hello" in lines[-1]
    assert (await fetch("text", jobid="nope")).code == 404
    bad = await fetch("text", jobid="j", width=5)
    assert bad.code == 400 and as_json(bad)["error"].startswith("width must be a whole number")


@pytest.mark.gen_test(timeout=20)
async def test_a_followed_view_draws_each_change_and_ends_with_the_job(
        fetch: Fetch, http_client: AsyncHTTPClient, base_url: str) -> None:
    await fetch("update", jobid="f", workid="w1", current=1, total=4)
    chunks: list[bytes] = []
    arrived = asyncio.Event()

    def on_chunk(chunk: bytes) -> None:
        chunks.append(chunk)
        arrived.set()

    following = http_client.fetch(f"{base_url}/progress/text?jobid=f&follow=1&clear=0",
                                  streaming_callback=on_chunk, request_timeout=15)

    async def next_text() -> str:
        await asyncio.wait_for(arrived.wait(), FRAME_WAIT_S)
        arrived.clear()
        return b"".join(chunks).decode()

    assert "w1 " in await next_text()
    await fetch("update", jobid="f", workid="w2", current=3, total=4)
    while "w2 " not in (text := await next_text()):
        pass
    assert text.count("f  ") >= 2  # a second frame, whole
    await fetch("delete", jobid="f")
    answer = await following
    assert answer.code == 200
    assert b"".join(chunks).decode().endswith("the job was deleted\n")


@pytest.mark.gen_test(timeout=10)
async def test_a_followed_view_ends_at_its_timeout(fetch: Fetch, http_client: AsyncHTTPClient,
                                                   base_url: str) -> None:
    await fetch("update", jobid="t", workid="w", current=1, total=2)
    started = time.monotonic()
    answer = await http_client.fetch(
        f"{base_url}/progress/text?jobid=t&follow=1&timeout=0.5&clear=1")
    assert 0.4 < time.monotonic() - started < 5
    assert answer.body.startswith(b"\x1b[H\x1b[2J")


def read_until(stream: IO[bytes], needle: bytes, timeout: float = FRAME_WAIT_S) -> bytes:
    """Bytes from a child's output until `needle` appears (os.read: whatever has arrived)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not in {seen[-300:]!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"the stream ended before {needle!r}: {seen[-300:]!r}"
            seen += chunk
    return seen


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["curl", "watch"])
def test_a_live_terminal_view_from_curl_and_from_watch(tmp_path: Path, how: str) -> None:
    with running_server(tmp_path / "snapshots") as server:
        server.get("update?jobid=live%3A1&workid=w1&current=1&total=4")
        if how == "curl":
            command = ["curl", "-sN",
                       f"{server.base_url}/progress/text?jobid=live%3A1&follow=1&width=60"]
        else:
            command = [sys.executable, "-m", "tornado_progress", "watch", "--width", "60",
                       "--no-color", f"{server.base_url}/progress/show?jobid=live%3A1"]
        with subprocess.Popen(command, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL) as viewer:
            try:
                assert viewer.stdout is not None
                read_until(viewer.stdout, b"w1 ")
                server.get("update?jobid=live%3A1&workid=w2&current=3&total=4")
                read_until(viewer.stdout, b"w2 ")
                server.get("delete?jobid=live%3A1")
                read_until(viewer.stdout, b"the job was deleted")
                assert viewer.wait(timeout=FRAME_WAIT_S) == (0 if how == "curl" else 1)
            finally:
                viewer.kill()
