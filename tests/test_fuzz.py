"""Random requests never get a 500, and a refused one changes nothing.

The app runs on its own event loop in a thread, so hypothesis can drive it with plain blocking
requests.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.serverproc import free_port
from tornado_progress.app import make_app
from tornado_progress.config import Settings
from tornado_progress.handlers import HARD_REQUEST_LIMIT
from tornado_progress.limits import Limits
from tornado_progress.longpoll import Waiters
from tornado_progress.model import Store
from tornado_progress.server import ProgressServer
from tornado_progress.snapshots import Snapshotter

ENDPOINTS = ["create", "update", "updates", "delete", "status", "poll", "health", "show",
             "render", "text", "jobs", "metrics", "", "nothing"]
NAMES = ["jobid", "workid", "current", "total", "desc", "ok", "since", "timeout", "width", "key",
         "scale", "other", "exit", "maxage", "workers", "metrics", "notify", "format", "theme",
         "rows", "color", "follow", "clear"]
VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "5", "-1", "1e999", "nan", "22.5", "true", "no", "j", "w",
                     "0.1", "4000", "61", "x" * 300, "+", "%", "&", "=", "%ZZ", "%ff"]),
    st.text(max_size=40),
)


class ThreadedServer:
    def __init__(self, tmp_path: Path) -> None:
        # Every request comes from one address: no per-address allowance of new jobs.
        settings = Settings(snapshot_dir=tmp_path, limits=Limits(
            max_jobs=50, max_workers_per_job=50, new_jobs_per_minute=0))
        self.settings = settings
        self.store = Store(settings.limits)
        # The job of the update sequences exists before random requests fill the job table.
        self.store.create("seq", "")
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        waiters = Waiters(settings.poll_interval)
        self.app = make_app(self.store, waiters, Snapshotter(self.store, tmp_path), settings)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        # The server main() runs: its fast path for update, updates and poll is fuzzed too.
        server = ProgressServer(self.app, self.settings, HARD_REQUEST_LIMIT)
        server.listen(self.port, "127.0.0.1")
        self.loop.call_soon(self.ready.set)
        self.loop.run_forever()
        server.stop()

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def request(self, method: str, target: str, body: bytes | None) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type") or "", response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def encode(pairs: list[tuple[str, str]], raw: bool) -> str:
    if raw:  # as a careless curl line sends it; the client library still needs valid ASCII
        return "&".join(f"{quote(k, safe='+%&=')}={quote(v, safe='+%&=')}" for k, v in pairs)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(endpoint=st.sampled_from(ENDPOINTS),
       pairs=st.lists(st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), VALUES),
                      max_size=8),
       post=st.booleans(), raw=st.booleans())
def test_random_requests_never_fail_and_refusals_change_nothing(
        server: ThreadedServer, endpoint: str, pairs: list[tuple[str, str]], post: bool,
        raw: bool) -> None:
    pairs = [(k, v) for k, v in pairs if not (k == "timeout" and v not in ("", "0", "0.1"))]
    if endpoint in ("poll", "text"):
        pairs.append(("timeout", "0"))  # keep every example short: timeouts are tested apart
    query = encode(pairs, raw)
    version = server.store.version
    if post:
        status, content_type, body = server.request("POST", f"/progress/{endpoint}",
                                                    query.encode())
    else:
        status, content_type, body = server.request("GET", f"/progress/{endpoint}?{query}",
                                                    None)
    assert status < 500, body
    if status >= 400:
        assert server.store.version == version, "a refused request changed the state"
        if content_type.startswith("application/json"):
            sentence = json.loads(body)["error"]
            assert isinstance(sentence, str) and sentence


NUMBERS = st.one_of(st.floats(min_value=0, max_value=1.7e308, allow_nan=False),
                    st.sampled_from([0.0, 1e-300, 5e-324, 1e308, 1.7976931348623157e308]),
                    st.integers(min_value=0, max_value=10**30))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(NUMBERS, NUMBERS), min_size=1, max_size=4))
@example(steps=[(0, 1e308), (1e-300, 1e308)])  # a rate so small the ETA overflows
@example(steps=[(0, 1.7e308), (1.7e308, 1.7e308), (1.7e308, 1.7e308)])  # the rate overflows
def test_update_sequences_keep_every_view_answering(server: ThreadedServer,
                                                    steps: list[tuple[float, float]]) -> None:
    """Rates and ETAs come from pairs of updates: extreme pairs must not break a view."""
    for current, total in steps:
        status, _, body = server.request(
            "GET", f"/progress/update?jobid=seq&workid=w&current={quote(repr(current))}"
                   f"&total={quote(repr(total))}", None)
        assert status == 200, body
    for view in ("status", "poll?since=0&", "show", "render"):
        target = f"/progress/{view}{'&' if '?' in view else '?'}jobid=seq".replace("&&", "&")
        status, _, body = server.request("GET", target, None)
        assert status in (200, 404), (view, body)
        if view == "status" and status == 200:
            json.loads(body, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
