"""The show page over HTTP (pytest-tornado): the HTML, its 404 and error pages, escaping of every
user-supplied string, the embedded first job JSON, the page without JavaScript, and its static
files."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from tests.conftest import FakeClock, Fetch
from tornado_progress.model import Store
from tornado_progress.pages import script_json, split_workers
from tornado_progress.views import duration, percent

MARKUP = '<script>alert(1)</script><img src=x onerror="alert(2)">'
CLOSER = "</script><!--<script>alert(3)</script>"


class Elements(HTMLParser):
    """Every element of a page with its attributes, and the text of each <script> by id."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: dict[str, str] = {}
        self._script_id: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._script_id = dict(attrs).get("id") or ""
            self.scripts[self._script_id] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_id = None

    def handle_data(self, data: str) -> None:
        if self._script_id is not None:
            self.scripts[self._script_id] += data

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]


def parse(response: HTTPResponse) -> Elements:
    page = Elements()
    page.feed(response.body.decode())
    return page


def text(response: HTTPResponse) -> str:
    return response.body.decode()


@pytest.mark.gen_test
async def test_show_is_an_html_page(fetch: Fetch) -> None:
    await fetch("create", jobid="j1", desc="Calibration")
    await fetch("update", jobid="j1", workid="w1", current=21, total=50)
    response = await fetch("show", jobid="j1")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    body = text(response)
    assert "<title>42% Calibration</title>" in body
    assert 'role="progressbar"' in body
    assert 'aria-valuenow="42"' in body


@pytest.mark.gen_test
async def test_unknown_job_is_a_404_page(fetch: Fetch) -> None:
    response = await fetch("show", jobid="nobody <b>here</b>")
    assert response.code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    body = text(response)
    assert "No such progress job" in body
    assert "nobody &lt;b&gt;here&lt;/b&gt;" in body
    assert "<b>here" not in body


@pytest.mark.gen_test
async def test_missing_jobid_is_an_html_error_page(fetch: Fetch) -> None:
    response = await fetch("show")
    assert response.code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert "jobid is required" in text(response)


@pytest.mark.gen_test
async def test_every_user_string_is_escaped(fetch: Fetch) -> None:
    jobid = "job " + CLOSER
    await fetch("create", jobid=jobid, desc=MARKUP)
    await fetch("update", jobid=jobid, workid=MARKUP, current=1, total=2, desc=CLOSER)
    response = await fetch("show", jobid=jobid)
    assert response.code == 200
    body = text(response)
    for raw in (MARKUP, CLOSER, "<img src=x", "<script>alert", "<!--"):
        assert raw not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    page = parse(response)
    # The only elements are the page's own: one <img> (the chart without JavaScript), no
    # event handler attribute anywhere, and scripts only from static/.
    assert [attrs.get("class") for attrs in page.find("img")] == ["chart"]
    assert [name for _, attrs in page.elements for name in attrs if name.startswith("on")] == []
    for script in page.find("script"):
        assert script.get("type") == "application/json" or (
            (script.get("src") or "").startswith("static/"))
    # The embedded job decodes to exactly what was sent.
    job = json.loads(page.scripts["initial-job"])
    assert job["jobid"] == jobid and job["desc"] == MARKUP
    [worker] = job["workers"]
    assert worker["workid"] == MARKUP and worker["desc"] == CLOSER


@pytest.mark.gen_test
async def test_embedded_job_is_the_full_status(fetch: Fetch) -> None:
    for workid in ("w10", "w2", "w1"):
        await fetch("update", jobid="j2", workid=workid, current=1, total=4)
    page = parse(await fetch("show", jobid="j2"))
    job = json.loads(page.scripts["initial-job"])
    status = json.loads((await fetch("status", jobid="j2")).body)
    assert job["full"] is True
    assert job["version"] == status["version"]
    assert job["generation"] == status["generation"]
    assert [worker["workid"] for worker in job["workers"]] == ["w1", "w2", "w10"]
    [root] = [attrs for attrs in page.find("div") if attrs.get("id") == "show"]
    assert float(root["data-stale-after"] or "nan") == 300.0


@pytest.mark.gen_test
async def test_without_javascript_the_page_shows_the_png(fetch: Fetch) -> None:
    await fetch("update", jobid="a b+c/d", workid="w1", current=1, total=4)
    body = text(await fetch("show", jobid="a b+c/d"))
    noscripts = re.findall(r"<noscript>(.*?)</noscript>", body, re.DOTALL)
    assert any('<meta http-equiv="refresh" content="5">' in block for block in noscripts)
    assert any('src="render?jobid=a%20b%2Bc%2Fd"' in block for block in noscripts)
    render = await fetch("render", jobid="a b+c/d")
    assert render.code == 200
    assert render.headers["Content-Type"] == "image/png"


@pytest.mark.gen_test
async def test_static_files_are_served_with_versions(fetch: Fetch) -> None:
    await fetch("update", jobid="j3", workid="w1", current=1, total=4)
    page = parse(await fetch("show", jobid="j3"))
    urls = [attrs["src"] for attrs in page.find("script") if attrs.get("src")]
    urls += [attrs["href"] for attrs in page.find("link") if attrs.get("href")]
    assert len(urls) == 12  # theme.js, the page's nine scripts, the stylesheet, the icon
    types = {".js": "javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for url in urls:
        assert url is not None and re.fullmatch(r"static/[\w.-]+\?v=\w+", url), url
        response = await fetch(url)
        assert response.code == 200, url
        suffix = url[url.rindex("."):url.index("?")]
        assert types[suffix] in response.headers["Content-Type"]
        assert b"innerHTML" not in response.body  # strings go in as text only


@pytest.mark.gen_test
async def test_page_follows_a_proxy_prefix(fetch: Fetch) -> None:
    """Every URL of the page is relative, so it works under a proxy's prefix too."""
    await fetch("update", jobid="j4", workid="w1", current=1, total=4)
    body = text(await fetch("show", jobid="j4", headers={"X-Forwarded-Prefix": "/tools"}))
    assert 'src="/' not in body and 'href="/' not in body


def test_script_json_cannot_close_its_element() -> None:
    body = json.dumps({"desc": "</script><!-- <b>"}).encode()
    safe = script_json(body)
    assert "<" not in safe
    assert json.loads(safe) == {"desc": "</script><!-- <b>"}


@pytest.mark.parametrize(("fraction", "expected"), [
    (0.0, 0), (0.42, 42), (0.46, 46), (0.999, 99), (1.0, 100), (1.5, 100), (-1.0, 0)])
def test_percent_rounds_down(fraction: float, expected: int) -> None:
    assert percent(fraction) == expected


@pytest.mark.parametrize(("seconds", "expected"), [
    (None, "\u2014"), (0, "0 s"), (59.4, "59 s"), (60, "1 min"), (61, "1 min 1 s"),
    (3660, "1 h 1 min"), (90000, "1 d 1 h")])
def test_duration_reads_like_the_page(seconds: Any, expected: str) -> None:
    assert duration(seconds) == expected


@pytest.mark.gen_test
async def test_errors_tornado_raises_on_the_page_are_html_too(fetch: Fetch) -> None:
    response = await fetch("show", method="POST", jobid="j")
    assert response.code == 405
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"POST is not allowed on /progress/show; use GET" in response.body


@pytest.mark.gen_test
async def test_header_counts_add_up_without_javascript(fetch: Fetch, store: Store,
                                                       clock: FakeClock) -> None:
    store.clock = clock
    for workid in ("w1", "w2", "w3"):
        store.update("j", workid, 1, 10, "", True)
    clock.advance(400)  # past the default --stale-after of 300 s
    store.update("j", "w4", 1, 10, "", True)
    body = (await fetch("show", jobid="j")).body.decode()
    counts = dict(re.findall(r'<span id="count-(\w+)" class="chip-count">(-?\d+)</span>', body))
    assert counts == {"running": "1", "stale": "3", "done": "0", "failed": "0", "waiting": "0"}


@pytest.mark.gen_test
async def test_a_big_job_reaches_the_page_in_pieces(fetch: Fetch, store: Store) -> None:
    """Past 5,000 workers the job JSON comes as its head and arrays of workers, each in a
    <script type="application/json"> of its own, that join up to the status body exactly;
    a desc that looks like the cut (`},{"workid":`) does not cut."""
    tricky = '},{"workid":"x"},{"workid":</script>'
    for index in range(12_345):
        store.update("big", f"w{index}", index % 7, 7, tricky if index % 1000 == 3 else "", True)
    response = await fetch("show", jobid="big")
    body = text(response)
    assert tricky not in body  # its "<" is escaped in every piece
    page = parse(response)
    job = json.loads(page.scripts["initial-job"])
    parts = re.findall(r'<script type="application/json" class="initial-workers">(.*?)</script>',
                       body, re.DOTALL)
    assert len(job["workers"]) == 5000 and len(parts) == 2
    for part in parts:
        job["workers"] += json.loads(part)
    status = json.loads((await fetch("status", jobid="big")).body)
    assert job["workers"] == status["workers"]
    assert job["version"] == status["version"]


def test_a_body_of_another_shape_is_left_whole() -> None:
    for body in (b'{"workers":[]}\n', b'{"jobid":"j"}\n', b'{"workers":[{"id":1}]}\n'):
        assert split_workers(body, per_part=1) == (body, [])
