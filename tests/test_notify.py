"""Notifications: create's notify URL is checked against the operator's prefixes, and a local
receiver gets a job's finish, a worker's first failure and a worker going stale, once each,
with retries when it fails to answer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import FakeClock, Fetch, as_json
from tests.serverproc import running_server
from tornado_progress.answer_cache import AnswerCache
from tornado_progress.bodies import BodyBuilder
from tornado_progress.model import Store
from tornado_progress.notify import Notifier

ALLOWED = {"notify_allow": ("http://127.0.0.1:",)}


class Receiver(ThreadingHTTPServer):
    """Answers with the statuses in `answers` first (then 200) and keeps what it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.got: list[dict[str, Any]] = []
        self.answers: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.server.answers.pop(0) if self.server.answers else 200
        if status == 200:
            self.server.got.append(json.loads(body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def delivered(notifier: Notifier) -> None:
    while notifier.in_flight:
        await asyncio.gather(*notifier.in_flight)


def events(receiver: Receiver) -> list[tuple[str, str | None]]:
    return [(got["event"], got["workid"]) for got in receiver.got]


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [ALLOWED], indirect=True)
async def test_a_failure_and_a_finish_are_told_once(fetch: Fetch, receiver: Receiver,
                                                    notifier: Notifier) -> None:
    created = as_json(await fetch("create", jobid="night run", workers=2, notify=receiver.url))
    assert created["notify"] == receiver.url
    await fetch("update", jobid="night run", workid="w1", current=1, total=2, exit=3)
    await fetch("update", jobid="night run", workid="w1", current=1, total=2, exit=3)
    await fetch("update", jobid="night run", workid="w2", current=2, total=2)
    await notifier.tick()
    await delivered(notifier)
    assert events(receiver) == [("worker_failed", "w1"), ("job_finished", None)]
    failed, finished = receiver.got
    assert failed["worker"]["desc"] == "exit 3" and failed["jobid"] == "night run"
    assert finished["summary"]["done"] == 1 and finished["summary"]["failed"] == 1
    assert finished["text"] == "Job 'night run' finished: 1 done, 1 failed of 2 workers."
    await notifier.tick()
    await delivered(notifier)
    assert len(receiver.got) == 2  # nothing new, nothing told


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [ALLOWED], indirect=True)
async def test_a_job_waiting_for_workers_has_not_finished(fetch: Fetch, receiver: Receiver,
                                                          notifier: Notifier) -> None:
    await fetch("create", jobid="j", workers=3, notify=receiver.url)
    for workid in ("a", "b"):
        await fetch("update", jobid="j", workid=workid, current=5, total=5)
    await notifier.tick()
    await delivered(notifier)
    assert receiver.got == []


@pytest.mark.gen_test
async def test_a_worker_going_stale_is_told_at_a_tick(clock: FakeClock,
                                                      receiver: Receiver) -> None:
    store = Store(clock=clock)
    notifier = Notifier(store, BodyBuilder(AnswerCache(1 << 20), stale_after=60))
    store.on_change = notifier.changed
    store.create("j", "", notify=receiver.url)
    store.update("j", "quiet", 1, 10, "", True)
    clock.advance(30)
    store.update("j", "busy", 1, 10, "", True)
    await notifier.tick()
    clock.advance(31)
    await notifier.tick()
    await notifier.tick()
    await delivered(notifier)
    assert events(receiver) == [("worker_stale", "quiet")]


@pytest.mark.gen_test
async def test_a_failing_receiver_is_tried_again_then_given_up(clock: FakeClock,
                                                              receiver: Receiver) -> None:
    store = Store(clock=clock)
    notifier = Notifier(store, BodyBuilder(AnswerCache(1 << 20), stale_after=60),
                        retry_delays=(0.01, 0.01))
    store.on_change = notifier.changed
    store.create("j", "", notify=receiver.url)
    receiver.answers = [503, 500]
    store.update("j", "w1", 1, 2, "", False)
    await delivered(notifier)
    assert events(receiver) == [("worker_failed", "w1")] and notifier.delivered == 1
    receiver.answers = [404]  # the receiver says no: asking again would not change that
    store.update("j", "w2", 1, 2, "", False)
    await delivered(notifier)
    assert notifier.dropped == 1 and len(receiver.got) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [ALLOWED], indirect=True)
async def test_only_allowed_urls_are_taken(fetch: Fetch) -> None:
    refused = await fetch("create", jobid="j", notify="http://10.0.0.1/internal")
    assert refused.code == 400
    assert as_json(refused)["error"].startswith("notify must be an http(s) URL")
    assert "--notify-allow" in as_json(refused)["error"]


@pytest.mark.gen_test
async def test_notify_is_off_unless_the_operator_allows_it(fetch: Fetch) -> None:
    refused = await fetch("create", jobid="j", notify="http://127.0.0.1:1/hook")
    assert refused.code == 400 and "--notify-allow" in as_json(refused)["error"]


@pytest.mark.e2e
def test_the_real_server_tells_a_receiver(tmp_path: Path, receiver: Receiver) -> None:
    with running_server(tmp_path / "snapshots", "--notify-allow", "http://127.0.0.1:") as server:
        query = urlencode({"jobid": "e2e", "notify": receiver.url, "workers": 1})
        server.get(f"create?{query}")
        server.get("update?jobid=e2e&workid=w&current=2&total=2")
        deadline = time.monotonic() + 10
        while not receiver.got and time.monotonic() < deadline:
            time.sleep(0.05)
    assert events(receiver) == [("job_finished", None)]
