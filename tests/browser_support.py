"""Driving the show page in the installed Chromium through Playwright, for the browser tests and
bench/browser_bench.py: the launch options, a page that records every request and error, and
worker updates sent over plain HTTP as a worker's script would send them.

The browser is Debian's `chromium` (installed by `make setup`); nothing is ever downloaded, and
the flags below stop the browser's own background traffic so that the only requests are the
page's.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request

CHROMIUM = Path(os.environ.get("TORNADO_PROGRESS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Bounded waits: long enough for a loaded CI machine, short enough to fail fast.
WAIT_MS = 5_000
RECONNECT_WAIT_MS = 25_000


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


__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "RECONNECT_WAIT_MS", "WAIT_MS", "ChromiumMissing",
           "PageWatch", "launch", "send", "show_url", "watched_page"]
