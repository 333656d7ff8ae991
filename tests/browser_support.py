"""Driving the show page in the installed Chromium through Playwright, for the browser tests and
bench/browser_bench.py: the launch options, a page that records every request and error, worker
updates sent over plain HTTP as a worker's script would send them (one by one, or many over one
keep-alive connection), big jobs written as a snapshot for the server to load at start, waits
on the page's own state, long tasks, and axe-core (tests/vendor/axe.min.js) run in the page.

The browser is Debian's `chromium` (installed by `make setup`); nothing is ever downloaded, and
the flags below stop the browser's own background traffic so that the only requests are the
page's.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, ViewportSize

from tornado_progress.model import Worker
from tornado_progress.snapshot_format import JobCopy, write_stream

CHROMIUM = Path(os.environ.get("TORNADO_PROGRESS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Bounded waits: long enough for a loaded CI machine, short enough to fail fast.
WAIT_MS = 5_000
RECONNECT_WAIT_MS = 25_000
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# The viewports the page is checked at: a phone and a laptop.
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
# Records every task of 50 ms or more (the browser's long tasks), from the page's start.
LONG_TASKS_JS = """
window.longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.longTasks.push(entry.duration);
}).observe({type: 'longtask', buffered: true});
"""


class ChromiumMissing(RuntimeError):
    """The browser the tests drive is not installed."""


def launch(playwright: Playwright) -> Browser:
    """Headless Chromium from the system, never a downloaded one."""
    if not CHROMIUM.is_file():
        raise ChromiumMissing(
            f"Chromium is not installed at {CHROMIUM}: run `make test` (it installs Debian's "
            "chromium package), or point TORNADO_PROGRESS_CHROMIUM at a Chromium binary")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)


@dataclass
class PageWatch:
    """What a page asked for and what went wrong in it."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def foreign_requests(self) -> list[str]:
        """Requests to anything but this server (another host, port or scheme)."""
        return [url for url in self.requests if not url.startswith(self.base_url + "/")]

    def assert_clean(self, allowed_console: tuple[str, ...] = ()) -> None:
        """No request elsewhere, no uncaught exception, no console error but those allowed
        (e.g. refused connections while the server restarts)."""
        assert self.foreign_requests() == []
        assert self.page_errors == []
        unexpected = [text for text in self.console_errors
                      if not any(allowed in text for allowed in allowed_console)]
        assert unexpected == []


def watched_page(browser: Browser, base_url: str, **context_options: Any
                 ) -> tuple[Page, PageWatch]:
    """A page in a fresh context whose requests, uncaught errors and console errors are kept."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    watch = PageWatch(base_url)
    page.on("request", watch.on_request)
    page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    page.on("console", watch.on_console)
    return page, watch


def show_url(base_url: str, jobid: str) -> str:
    return f"{base_url}/progress/show?jobid={quote(jobid, safe='')}"


def send(base_url: str, endpoint: str, **params: Any) -> Any:
    """POSTs a form to /progress/<endpoint>, as `curl --data-urlencode` does; returns the
    decoded JSON answer (urllib raises HTTPError for an error status)."""
    data = urlencode(params).encode()
    with urllib.request.urlopen(f"{base_url}/progress/{endpoint}", data=data,
                                timeout=10) as response:
        return json.loads(response.read())


def send_many(base_url: str, endpoint: str, forms: Iterable[dict[str, Any]]) -> None:
    """POSTs each form in turn over one keep-alive connection: a big job in a second."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port,
                                            timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        for form in forms:
            connection.request("POST", f"/progress/{endpoint}", urlencode(form), headers)
            answer = connection.getresponse()
            body = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{endpoint} answered {answer.status}: {body[:200]!r}")
    finally:
        connection.close()


def write_job_snapshot(folder: Path, jobid: str, workers: list[Worker], desc: str = "",
                       expected: int | None = None) -> None:
    """A snapshot holding one job (`expected` as create's `workers`), named as the server
    names them, for a server started on `folder` to load: the fast and honest way to a
    100,000-worker job. Workers' versions are filled in."""
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    version = int(now * 1_000_000)
    first = version - 1_000_000
    workers = [worker._replace(version=first + index) for index, worker in enumerate(workers)]
    job: JobCopy = (jobid, desc, now - 600, now, version, first - 1, workers, None, None,
                    expected, False, None)
    with (folder / f"snapshot-{version + 1:020d}.msgpack").open("wb") as out:
        write_stream(out, [job], version + 1, now)


# Polls a predicate in the page, frame by frame (PREDICATE is replaced by its source).
WAIT_JS = """async (timeout) => {
      const predicate = (PREDICATE);
      const deadline = performance.now() + timeout;
      for (;;) {
        const value = await predicate();
        if (value) return value;
        if (performance.now() > deadline) return null;
        await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 10)));
      }
    }"""


def wait_until(page: Page, predicate: str, timeout_ms: int = WAIT_MS) -> Any:
    """Waits, frame by frame in the page, until `predicate` (a JavaScript function's source)
    returns something true, and returns that. Like Playwright's wait_for_function, which the
    page's CSP stops (it evaluates its predicate as a string)."""
    result = page.evaluate(WAIT_JS.replace("PREDICATE", predicate), timeout_ms)
    assert result, f"not true within {timeout_ms} ms: {predicate}"
    return result


def run_axe(page: Page, selector: str = "html") -> list[dict[str, Any]]:
    """axe-core's violations in the page as it is (every rule axe runs by default, WCAG 2.2
    A and AA among them): the vendored copy, evaluated in the page, never served by the app."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    outcome: dict[str, Any] = page.evaluate(
        """async (selector) => await axe.run(document.querySelector(selector),
                                             {resultTypes: ['violations']})""", selector)
    return [{"id": rule["id"], "help": rule["help"],
             "nodes": [node["target"] for node in rule["nodes"]][:5]}
            for rule in outcome["violations"]]


__all__ = ["AXE", "CHROMIUM", "CHROMIUM_ARGS", "DESKTOP", "LONG_TASKS_JS", "PHONE",
           "RECONNECT_WAIT_MS", "WAIT_MS", "ChromiumMissing", "PageWatch", "launch", "run_axe",
           "send", "send_many", "show_url", "wait_until", "watched_page", "write_job_snapshot"]
