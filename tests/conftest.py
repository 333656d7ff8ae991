"""Fixtures shared by the tests: an injected clock, a store, and the app for pytest-tornado."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, sync_playwright
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.web import Application

from tests.browser_support import ChromiumMissing, launch
from tornado_progress.answer_cache import AnswerCache
from tornado_progress.app import make_app
from tornado_progress.bodies import BodyBuilder
from tornado_progress.config import Settings
from tornado_progress.handlers import HARD_REQUEST_LIMIT
from tornado_progress.limits import Limits
from tornado_progress.longpoll import Waiters
from tornado_progress.model import Store
from tornado_progress.notify import Notifier
from tornado_progress.render_handler import ChartRenderer
from tornado_progress.server import ProgressServer
from tornado_progress.snapshots import Snapshotter


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_764_391_200.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def fast_path(request: pytest.FixtureRequest) -> bool:
    """Whether update, updates and poll take the fast path (the default) or the handlers; a
    module that sets `RUN_ON_BOTH_PATHS = True` runs each of its HTTP tests both ways."""
    return bool(getattr(request, "param", True))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if getattr(metafunc.module, "RUN_ON_BOTH_PATHS", False) and \
            "fast_path" in metafunc.fixturenames:
        metafunc.parametrize("fast_path", [True, False], indirect=True,
                             ids=["fast", "handlers"])


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, limits: Limits,
             fast_path: bool) -> Settings:
    """The test's settings; `@pytest.mark.parametrize("settings", [{...}], indirect=True)`
    changes some of them."""
    overrides: dict[str, Any] = {"fast_path": fast_path, **getattr(request, "param", {})}
    return Settings(snapshot_dir=tmp_path / "snapshots", limits=limits, **overrides)


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store(settings.limits)


@pytest.fixture
def waiters(settings: Settings) -> Waiters:
    return Waiters(settings.poll_interval, settings.viewer_share)


@pytest.fixture
def snapshotter(store: Store, settings: Settings) -> Snapshotter:
    return Snapshotter(store, settings.snapshot_dir)


@pytest.fixture
def renderer() -> Iterator[ChartRenderer]:
    charts = ChartRenderer()
    yield charts
    charts.close()


@pytest.fixture
def answers(settings: Settings) -> AnswerCache:
    return AnswerCache(settings.cache_bytes)


@pytest.fixture
def bodies(answers: AnswerCache, settings: Settings) -> Iterator[BodyBuilder]:
    builder = BodyBuilder(answers, settings.stale_after)
    yield builder
    builder.close()


@pytest.fixture
def notifier(store: Store, settings: Settings, bodies: BodyBuilder) -> Notifier | None:
    """The notifier when the settings allow notify URLs; tests tick it themselves."""
    if not settings.notify_allow:
        return None
    return Notifier(store, bodies, retry_delays=(0.05, 0.1))


@pytest.fixture
def app(store: Store, waiters: Waiters, snapshotter: Snapshotter, settings: Settings,
        renderer: ChartRenderer, answers: AnswerCache, bodies: BodyBuilder,
        notifier: Notifier | None) -> Application:
    return make_app(store, waiters, snapshotter, settings, renderer, answers, bodies,
                    notifier=notifier)


@pytest.fixture
def http_server(request: pytest.FixtureRequest, io_loop: Any, _unused_port: Any, app: Application,
                settings: Settings) -> Iterator[ProgressServer]:
    """pytest-tornado's server fixture, with the server `main()` runs: every HTTP test goes
    through its timeouts, proxy rules and sentences."""
    server = ProgressServer(app, settings, max(HARD_REQUEST_LIMIT, settings.max_request_bytes))
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)


Fetch = Callable[..., Coroutine[Any, Any, HTTPResponse]]


@pytest.fixture
def fetch(http_client: AsyncHTTPClient, base_url: str) -> Fetch:
    """`await fetch("update", jobid=..., ...)`: GET (or POST with `method="POST"`) an endpoint
    with parameters; never raises on an error status."""

    async def call(endpoint: str, method: str = "GET", headers: dict[str, str] | None = None,
                   body: str | bytes | None = None, body_producer: Any = None,
                   **params: Any) -> HTTPResponse:
        query = urlencode(params)
        url = f"{base_url}/progress/{endpoint}"
        if method == "POST":
            if body is None and body_producer is None:
                body = query
        elif query:
            url += "?" + query
        response: HTTPResponse = await http_client.fetch(
            url, method=method, body=body, body_producer=body_producer, headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True, request_timeout=70)
        return response

    return call


def as_json(response: HTTPResponse) -> Any:
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for a module of browser tests (tests/browser_support.launch)."""
    with sync_playwright() as playwright:
        try:
            chromium = launch(playwright)
        except ChromiumMissing as error:
            pytest.fail(str(error))
        yield chromium
        chromium.close()
