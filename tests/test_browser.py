"""The show page in a real headless Chromium, against the real server process: live rows by long
polling, colours, order, reset on re-create, text-only strings, reconnection, no foreign
requests and no JavaScript errors, the title, and the page without JavaScript. The layouts,
big jobs, accessibility and news have files of their own (tests/test_show_*.py)."""

from __future__ import annotations

import html
import json
import re
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser_support import (
    RECONNECT_WAIT_MS,
    WAIT_MS,
    PageWatch,
    send,
    send_many,
    show_url,
    watched_page,
)
from tests.clusterproc import call, running_cluster, typed
from tests.serverproc import ServerProcess, running_server
from tornado_progress import palette

pytestmark = pytest.mark.browser
# Refused connections while the server restarts are logged by Chromium itself, not the page.
NETWORK_ERRORS = ("Failed to load resource", "net::ERR_")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    snapshots = tmp_path_factory.mktemp("browser") / "snapshots"
    with running_server(snapshots, "--stale-after", "5") as process:
        yield process


@pytest.fixture
def jobid() -> str:
    """A fresh job per test, so that tests sharing the server never see each other."""
    return f"job {uuid.uuid4().hex[:8]}"


@pytest.fixture
def viewer(browser: Browser, server: ServerProcess) -> Iterator[tuple[Page, PageWatch]]:
    page, watch = watched_page(browser, server.base_url)
    yield page, watch
    page.context.close()


def row(page: Page, workid: str) -> Locator:
    """The row of one worker, found by its exact id."""
    return page.locator("#workers .worker").filter(
        has=page.locator(".workid-text", has_text=re.compile(f"^{re.escape(workid)}$")))


def open_show(page: Page, base_url: str, jobid: str) -> None:
    page.goto(show_url(base_url, jobid))
    expect(page.locator("#show.is-live")).to_be_visible(timeout=WAIT_MS)


def test_new_worker_appears_without_reload(viewer: tuple[Page, PageWatch],
                                           server: ServerProcess, jobid: str) -> None:
    page, watch = viewer
    send(server.base_url, "update", jobid=jobid, workid="w1", current=1, total=10)
    open_show(page, server.base_url, jobid)
    expect(page.locator("#workers .worker")).to_have_count(1)
    navigations = len([url for url in watch.requests if "/progress/show" in url])
    send(server.base_url, "update", jobid=jobid, workid="w2", current=3, total=4,
         desc="second")
    expect(page.locator("#workers .worker")).to_have_count(2, timeout=WAIT_MS)
    bar = row(page, "w2").locator("[role=progressbar]")
    expect(bar).to_have_attribute("aria-valuenow", "75")
    expect(bar.locator(".label")).to_have_text("second")
    expect(row(page, "w2").locator(".count")).to_have_text("3/4")
    assert len([url for url in watch.requests if "/progress/show" in url]) == navigations
    watch.assert_clean()


def test_only_changed_rows_are_touched(viewer: tuple[Page, PageWatch], server: ServerProcess,
                                       jobid: str) -> None:
    page, watch = viewer
    for workid in ("w1", "w2", "w3"):
        send(server.base_url, "update", jobid=jobid, workid=workid, current=1, total=4)
    open_show(page, server.base_url, jobid)
    # Mark the rows, and note every change below the list except the clock-driven cells.
    page.evaluate("""async () => {
      // Two frames: the labels' first placement (a ResizeObserver) is behind us.
      for (let i = 0; i < 2; i += 1) await new Promise((done) => requestAnimationFrame(done));
      for (const row of document.querySelectorAll('#workers .worker')) row.marked = true;
      window.touched = new Set();
      new MutationObserver((records) => {
        for (const record of records) {
          const target = record.target.nodeType === 1 ? record.target : record.target.parentNode;
          if (target.closest('.age, .eta')) continue;
          const row = target.closest('.worker');
          window.touched.add(row ? row.querySelector('.workid-text').textContent : 'list');
        }
      }).observe(document.getElementById('workers'),
                 {subtree: true, childList: true, attributes: true, characterData: true});
    }""")
    send(server.base_url, "update", jobid=jobid, workid="w2", current=3, total=4)
    expect(row(page, "w2").locator(".count")).to_have_text("3/4", timeout=WAIT_MS)
    assert page.evaluate("[...window.touched]") == ["w2"]
    assert page.evaluate(
        "[...document.querySelectorAll('#workers .worker')].every((row) => row.marked)")
    watch.assert_clean()


def test_workers_in_natural_order_and_sort_control(viewer: tuple[Page, PageWatch],
                                                   server: ServerProcess, jobid: str) -> None:
    page, watch = viewer
    for workid, current, ok in (("w10", 9, 1), ("w2", 1, 1), ("w3", 10, 1)):
        send(server.base_url, "update", jobid=jobid, workid=workid, current=current,
             total=10, ok=ok)
    open_show(page, server.base_url, jobid)
    expect(page.locator("#workers .workid-text")).to_have_text(["w2", "w3", "w10"])
    # A failure turns the automatic order to problems first: failed, running, done.
    send(server.base_url, "update", jobid=jobid, workid="w1", current=5, total=10, ok=0)
    expect(page.locator("#workers .workid-text")).to_have_text(
        ["w1", "w2", "w10", "w3"], timeout=WAIT_MS)
    expect(page.locator("#sort option[value=auto]")).to_have_text("automatic: problems first")
    page.select_option("#sort", "name")
    expect(page.locator("#workers .workid-text")).to_have_text(["w1", "w2", "w3", "w10"])
    page.select_option("#sort", "progress")
    expect(page.locator("#workers .workid-text")).to_have_text(["w2", "w1", "w10", "w3"])
    page.select_option("#sort", "problems")
    # A new worker takes its place in the chosen order: failed first, then by name.
    send(server.base_url, "update", jobid=jobid, workid="w0", current=0, total=10, ok=0)
    expect(page.locator("#workers .workid-text")).to_have_text(
        ["w0", "w1", "w2", "w10", "w3"], timeout=WAIT_MS)
    # The choice is remembered: the next visit opens in the same order.
    page.reload()
    expect(page.locator("#sort")).to_have_value("problems")
    expect(page.locator("#workers .workid-text")).to_have_text(["w0", "w1", "w2", "w10", "w3"])
    watch.assert_clean()


def test_worker_turning_failed_turns_red(viewer: tuple[Page, PageWatch], server: ServerProcess,
                                         jobid: str) -> None:
    page, watch = viewer
    send(server.base_url, "update", jobid=jobid, workid="w1", current=2, total=10)
    open_show(page, server.base_url, jobid)
    fill = row(page, "w1").locator(".fill")
    expect(fill).to_have_css("background-color", css_rgb("ok"))
    send(server.base_url, "update", jobid=jobid, workid="w1", current=3, total=10, ok=0,
         desc="failed: disk full")
    expect(row(page, "w1")).to_have_class(re.compile(r"\bis-failed\b"), timeout=WAIT_MS)
    expect(fill).to_have_css("background-color", css_rgb("failed"))
    expect(page.locator("#count-failed")).to_have_text("1")
    watch.assert_clean()


def test_finished_and_quiet_workers_look_distinct(viewer: tuple[Page, PageWatch],
                                                  server: ServerProcess, jobid: str) -> None:
    """Done has its own finish; a worker silent past --stale-after (5 s) turns muted by the
    page's own clock, with no request."""
    page, watch = viewer
    send(server.base_url, "update", jobid=jobid, workid="done", current=5, total=5)
    send(server.base_url, "update", jobid=jobid, workid="quiet", current=1, total=5)
    open_show(page, server.base_url, jobid)
    expect(row(page, "done").locator(".fill")).to_have_css("background-color", css_rgb("done"))
    requests = len(watch.requests)
    expect(row(page, "quiet").locator(".age")).to_have_text(re.compile(r"^[1-9] s ago$"),
                                                             timeout=WAIT_MS)
    expect(row(page, "quiet")).to_have_class(re.compile(r"\bis-stale\b"), timeout=8_000)
    expect(row(page, "quiet").locator(".fill")).to_have_css("background-color", css_rgb("stale"))
    expect(page.locator("#count-stale")).to_have_text("1")
    assert len(watch.requests) == requests  # ages and stale marks moved without the server
    watch.assert_clean()


def test_recreated_job_drops_old_rows(viewer: tuple[Page, PageWatch], server: ServerProcess,
                                      jobid: str) -> None:
    page, watch = viewer
    send(server.base_url, "create", jobid=jobid, desc="first run")
    for workid in ("a1", "a2", "a3"):
        send(server.base_url, "update", jobid=jobid, workid=workid, current=1, total=2)
    open_show(page, server.base_url, jobid)
    expect(page.locator("#workers .worker")).to_have_count(3)
    send(server.base_url, "create", jobid=jobid, desc="second run")
    expect(page.locator("#workers .worker")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("#job-desc")).to_have_text("second run")
    expect(page.locator("#empty")).to_be_visible()
    send(server.base_url, "update", jobid=jobid, workid="b1", current=1, total=4)
    expect(page.locator("#workers .workid-text")).to_have_text(["b1"], timeout=WAIT_MS)
    watch.assert_clean()


def test_strings_that_look_like_markup_stay_text(viewer: tuple[Page, PageWatch],
                                                 server: ServerProcess) -> None:
    page, watch = viewer
    jobid = f"<b>{uuid.uuid4().hex[:6]}</b></script>"
    desc = "<img src=x onerror=window.pwned=1>"
    script = "<script>window.pwned=1</script>"
    send(server.base_url, "create", jobid=jobid, desc=desc)
    send(server.base_url, "update", jobid=jobid, workid="<i>w1</i>", current=1, total=2,
         desc=script)
    open_show(page, server.base_url, jobid)
    # Markup from the server's first page, then from a poll answer.
    send(server.base_url, "update", jobid=jobid, workid="<svg onload=window.pwned=1>",
         current=1, total=2, desc="<!-- </script><script>window.pwned=1</script>")
    expect(page.locator("#workers .worker")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#job-desc")).to_have_text(desc)
    expect(page.locator("#job-id")).to_have_text(jobid)
    expect(row(page, "<i>w1</i>").locator(".label")).to_have_text(script)
    expect(row(page, "<svg onload=window.pwned=1>")).to_have_count(1)
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("#show img, #show script, #show svg, #show b, #show i").count() == 0
    assert page.title().endswith(desc)
    watch.assert_clean()


def test_title_shows_the_percent(viewer: tuple[Page, PageWatch], server: ServerProcess,
                                 jobid: str) -> None:
    page, watch = viewer
    send(server.base_url, "create", jobid=jobid, desc="My job")
    send(server.base_url, "update", jobid=jobid, workid="w1", current=42, total=100)
    open_show(page, server.base_url, jobid)
    expect(page).to_have_title("42% My job")
    send(server.base_url, "update", jobid=jobid, workid="w2", current=1, total=2)
    expect(page).to_have_title("46% My job", timeout=WAIT_MS)  # the mean of 42 % and 50 %
    expect(page.locator("#overall-bar")).to_have_attribute("aria-valuenow", "46")
    watch.assert_clean()


def test_deleted_job_says_so(viewer: tuple[Page, PageWatch], server: ServerProcess,
                             jobid: str) -> None:
    page, watch = viewer
    send(server.base_url, "update", jobid=jobid, workid="w1", current=1, total=2)
    open_show(page, server.base_url, jobid)
    send(server.base_url, "delete", jobid=jobid)
    expect(page.locator("#notice")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#notice")).to_contain_text("no longer exists")
    expect(page).to_have_title(re.compile("^Deleted"))
    # It comes back with its next update, as a new job: the page follows it again.
    send(server.base_url, "update", jobid=jobid, workid="w9", current=1, total=2)
    expect(page.locator("#workers .workid-text")).to_have_text(["w9"], timeout=8_000)
    expect(page.locator("#notice")).to_be_hidden()
    # The 404 of the poll is the answer the page waits for, not an error of the page.
    watch.assert_clean(allowed_console=("404",))


def test_unknown_job_shows_a_404_page(viewer: tuple[Page, PageWatch],
                                      server: ServerProcess) -> None:
    page, _ = viewer
    response = page.goto(show_url(server.base_url, "no such job"))
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("No such progress job")
    expect(page.locator("code")).to_have_text("no such job")


def test_reconnects_within_two_seconds_of_the_server_coming_back(browser: Browser,
                                                                 tmp_path: Path,
                                                                 jobid: str) -> None:
    with running_server(tmp_path / "snapshots", "--stale-after", "5") as server:
        page, watch = watched_page(browser, server.base_url)
        send(server.base_url, "update", jobid=jobid, workid="w1", current=1, total=3)
        open_show(page, server.base_url, jobid)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        server.stop()
        expect(page.locator("#connection")).to_have_attribute("data-state", "lost",
                                                              timeout=WAIT_MS)
        expect(page.locator("#connection-text")).to_contain_text("Connection lost")
        # "Retry now" probes at once, whatever the countdown says.
        with page.expect_request(re.compile(r"/progress/health$"), timeout=WAIT_MS):
            page.click("#retry")
        server.start()  # same port, same snapshots: the job comes back from the snapshot
        back = page.evaluate("performance.now()")  # the server answers health from here on
        expect(page.locator("#connection")).to_have_attribute("data-state", "live",
                                                              timeout=RECONNECT_WAIT_MS)
        took = page.evaluate("window.progressPage.stats.liveAt") - back
        assert took < 2_000, f"live again {took:.0f} ms after the server was back"
        expect(page.locator("#retry")).to_be_hidden()
        send(server.base_url, "update", jobid=jobid, workid="w2", current=2, total=3)
        expect(page.locator("#workers .workid-text")).to_have_text(["w1", "w2"],
                                                                   timeout=WAIT_MS)
        page.context.close()
    watch.assert_clean(allowed_console=NETWORK_ERRORS)


def test_no_foreign_request_and_no_error(viewer: tuple[Page, PageWatch], server: ServerProcess,
                                         jobid: str) -> None:
    page, watch = viewer
    send(server.base_url, "create", jobid=jobid, desc="see http://example.com/x.png")
    send(server.base_url, "update", jobid=jobid, workid="w1", current=1, total=3,
         desc="//example.org/track.gif")
    open_show(page, server.base_url, jobid)
    send(server.base_url, "update", jobid=jobid, workid="w1", current=2, total=3)
    expect(row(page, "w1").locator(".count")).to_have_text("2/3", timeout=WAIT_MS)
    assert any("/progress/poll?" in url for url in watch.requests)
    assert any("/progress/static/show.js?v=" in url for url in watch.requests)
    watch.assert_clean()


def test_a_thousand_workers(viewer: tuple[Page, PageWatch], server: ServerProcess,
                            jobid: str) -> None:
    page, watch = viewer
    send_many(server.base_url, "update", (
        {"jobid": jobid, "workid": f"w{index}", "current": index % 10, "total": 10,
         "desc": f"item {index}"} for index in range(1000)))
    open_show(page, server.base_url, jobid)
    expect(page.locator("#worker-count")).to_have_text("1,000 workers")
    # Only the rows in view (and a screenful around them) are elements.
    assert 10 < page.locator("#workers .worker").count() < 100
    page.fill("#filter", "w999")
    expect(page.locator("#workers .workid-text")).to_have_text(["w999"])
    expect(page.locator("#worker-count")).to_have_text("Showing 1 of 1,000 workers")
    send(server.base_url, "update", jobid=jobid, workid="w999", current=10, total=10)
    expect(row(page, "w999")).to_have_class(re.compile(r"\bis-done\b"), timeout=WAIT_MS)
    applied = page.evaluate("window.progressPage.stats.maxApplyMs")
    assert applied < 2_000, f"applying 1,000 workers took {applied:.0f} ms"
    watch.assert_clean()


def test_without_javascript_the_page_shows_the_png(browser: Browser, server: ServerProcess,
                                                   jobid: str) -> None:
    page, watch = watched_page(browser, server.base_url, java_script_enabled=False)
    send(server.base_url, "update", jobid=jobid, workid="w1", current=1, total=3)
    with page.expect_response(re.compile(r"/progress/render\?")) as png:
        page.goto(show_url(server.base_url, jobid))
    assert png.value.status == 200
    assert png.value.headers["content-type"] == "image/png"
    expect(page.locator("img.chart")).to_be_visible()
    expect(page.locator("#sort")).to_be_hidden()
    # The page refreshes itself (meta refresh in <noscript>): a second load comes by itself.
    with page.expect_response(re.compile(r"/progress/show\?"), timeout=10_000) as again:
        pass
    assert again.value.status == 200
    page.context.close()
    assert watch.foreign_requests() == []


def css_rgb(name: str) -> str:
    red, green, blue = palette.COLOURS[name]
    return f"rgb({red}, {green}, {blue})"


@contextmanager
def attacker_site(pages: dict[str, str]) -> Iterator[str]:
    """Another site on this machine (`localhost` on a port of its own, while the service is
    at 127.0.0.1) serving the given pages; yields its base URL."""

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


def test_another_sites_page_cannot_delete_or_replace_a_job(browser: Browser,
                                                           server: ServerProcess,
                                                           jobid: str) -> None:
    """Issue 8: an <img src=".../delete?jobid=victim"> on another origin once deleted the job;
    an auto-submitting form there could delete or replace it."""
    send(server.base_url, "update", jobid=jobid, workid="w1", current=1, total=2)
    target = f"{server.base_url}/progress/"
    query = urlencode({"jobid": jobid})
    form = (f'<form method="post" action="{target}delete"><input name="jobid" '
            f'value="{html.escape(jobid)}"></form><script>document.forms[0].submit()</script>')
    pages = {"/img": f'<img src="{target}delete?{query}"><img src="{target}create?{query}">',
             "/form": form}
    context = browser.new_context()
    page = context.new_page()
    with attacker_site(pages) as site:
        page.goto(f"{site}/img")  # returns once the images have loaded or failed
        # Chromium shows the page no JSON answer to an <img>: the server's log says what it did.
        tag = jobid.split()[1]
        refused = [line.split(" (")[0].rsplit(": ", 1)[-1] for line in server.log().splitlines()
                   if tag in line and "/progress/" in line]
        assert sorted(refused)[-2:] == [f"403 GET /progress/create?jobid=job+{tag}",
                                        f"403 GET /progress/delete?jobid=job+{tag}"]
        with page.expect_response(lambda response: response.url == f"{target}delete"
                                  and response.request.method == "POST") as posted:
            page.goto(f"{site}/form")
        assert posted.value.status == 403
    context.close()
    job = json.loads(urllib.request.urlopen(
        f"{server.base_url}/progress/status?{query}", timeout=10).read())
    assert [worker["workid"] for worker in job["workers"]] == ["w1"]


def test_the_page_through_nginx_follows_a_job_however_its_workers_spell_it(
        browser: Browser, tmp_path: Path) -> None:
    """The page asks with encodeURIComponent, curl sends `:` and `+` raw, requests sends a
    form: through nginx with three backends, all of them reach the job's one backend."""
    jobid = "u1:run 2026-11-30T04:09:17+00:00"
    with running_cluster(tmp_path, 3) as cluster, cluster.connect() as connection:
        page, watch = watched_page(browser, cluster.base_url)
        send(cluster.base_url, "create", jobid=jobid, desc="through nginx")
        open_show(page, cluster.base_url, jobid)
        status, _ = call(connection, "GET",
                         f"/progress/update?jobid={typed(jobid)}&workid=curl&current=1&total=2")
        assert status == 200
        expect(row(page, "curl")).to_have_count(1, timeout=WAIT_MS)
        send(cluster.base_url, "update", jobid=jobid, workid="requests", current=2, total=2)
        expect(row(page, "requests")).to_have_count(1, timeout=WAIT_MS)
        expect(page.locator("#workers .worker")).to_have_count(2)
        watch.assert_clean()
        page.context.close()


def test_the_home_page_opens_a_job_and_keeps_its_list_live(browser: Browser,
                                                           tmp_path: Path) -> None:
    with running_server(tmp_path / "snapshots", "--list-jobs") as listing:
        send(listing.base_url, "update", jobid="u1:first", workid="w", current=1, total=4)
        page, watch = watched_page(browser, listing.base_url)
        page.goto(f"{listing.base_url}/")
        expect(page.locator("#jobs tr")).to_have_count(1)
        send(listing.base_url, "create", jobid="second <job>", workers=2)
        expect(page.locator("#jobs tr").first).to_contain_text("second <job>", timeout=WAIT_MS)
        page.fill("#open-jobid", "u1:first")
        page.click(".open-job button")
        expect(page.locator("#show.is-live")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#workers .worker")).to_have_count(1)
        watch.assert_clean()
        page.context.close()
