"""What the show page tells without being watched, and the one order of names: the tab's title
(percent, a mark once something failed or all is done), the live region (a failure and the
finish, never the reconnect countdown), notifications asked for only after the click, and
compareNames sorting exactly as the server's views.natural_key."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import (
    WAIT_MS,
    PageWatch,
    send,
    show_url,
    wait_until,
    watched_page,
)
from tests.serverproc import ServerProcess, running_server
from tornado_progress import views

pytestmark = pytest.mark.browser
# Stands in for the browser's Notification: counts permission requests, keeps what is shown,
# and keeps a granted permission across reloads as a browser does.
FAKE_NOTIFICATIONS_JS = """
window.permissionAsks = 0;
window.shownNotifications = [];
class FakeNotification {
  constructor(title, options) {
    window.shownNotifications.push({title, body: options && options.body});
  }
  static requestPermission() {
    window.permissionAsks += 1;
    FakeNotification.permission = 'granted';
    sessionStorage.setItem('fake-permission', 'granted');
    return Promise.resolve('granted');
  }
}
FakeNotification.permission = sessionStorage.getItem('fake-permission') || 'default';
Object.defineProperty(window, 'Notification', {value: FakeNotification, configurable: true});
"""
# Names whose order a naive collation gets wrong: case, leading zeros, non-ASCII digits,
# accents, astral letters (UTF-16 order would differ), ligatures, the dotted capital I, Greek
# sigmas (letters that look Latin on purpose, hence the noqa).
TRICKY_NAMES = ["w10", "w2", "W1", "²", "w٣", "x", "w1", "w01", "ä", "a", "é1", "e2", "É0",
                "𝔘1", "u2", "ﬀ", "İx", "w007", "w7", "w", "w1a", "ΣΑΣ", "σας2",  # noqa: RUF001
                "99999999999999999999999", "100000000000000000000000"]
# Characters of long-assigned Unicode, so that Python's and the browser's case tables agree.
ALPHABET = [*"aAbBzZ09 _-.:/ßäÄéÉıİiIΣσςΑ²٣ﬀ𝔘𝔞ǅǆǄ", "0", "1", "7", "007", "10"]  # noqa: RUF001


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("live") / "snapshots") as process:
        yield process


@pytest.fixture
def jobid() -> str:
    return f"live {uuid.uuid4().hex[:8]}"


def open_show(browser: Browser, server: ServerProcess, jobid: str,
              script: str = "") -> tuple[Page, PageWatch]:
    page, watch = watched_page(browser, server.base_url)
    if script:
        page.add_init_script(script)
    page.goto(show_url(server.base_url, jobid))
    expect(page.locator("#show.is-live")).to_be_visible(timeout=WAIT_MS)
    return page, watch


def update(server: ServerProcess, jobid: str, workid: str, current: int, ok: int = 1) -> None:
    send(server.base_url, "update", jobid=jobid, workid=workid, current=current, total=10,
         ok=ok)


def test_notifications_are_asked_for_only_after_the_click(browser: Browser,
                                                          server: ServerProcess,
                                                          jobid: str) -> None:
    send(server.base_url, "create", jobid=jobid, desc="Nightly", workers=3)
    for workid in ("w1", "w2", "w3"):
        update(server, jobid, workid, 1)
    page, watch = open_show(browser, server, jobid, FAKE_NOTIFICATIONS_JS)
    button = page.locator("#notify")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-pressed", "false")
    update(server, jobid, "w1", 2, ok=0)  # news, but nobody asked for notifications yet
    expect(page.locator("#announcer")).to_have_text("Worker w1 failed.", timeout=WAIT_MS)
    assert page.evaluate("[window.permissionAsks, window.shownNotifications]") == [0, []]
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.permissionAsks") == 1
    update(server, jobid, "w2", 3, ok=0)
    wait_until(page, "() => window.shownNotifications.length === 1")
    update(server, jobid, "w3", 10)  # every worker done or failed: the job is finished
    wait_until(page, "() => window.shownNotifications.length === 2")
    assert page.evaluate("window.shownNotifications") == [
        {"title": "Failed: Nightly", "body": "Worker w2 failed."},
        {"title": "Finished: Nightly", "body": "Job finished: 1 done, 2 failed."}]
    # Remembered: the next visit notifies without asking again.
    page.reload()
    expect(page.locator("#notify")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.permissionAsks") == 0
    watch.assert_clean()
    page.context.close()


def test_the_live_region_speaks_only_of_failures_and_the_finish(browser: Browser,
                                                                server: ServerProcess,
                                                                jobid: str) -> None:
    update(server, jobid, "w1", 1, ok=0)  # failed before the page opened: not news
    update(server, jobid, "w2", 1)
    page, watch = open_show(browser, server, jobid)
    announcer = page.locator("#announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    # The connection's countdown is in no live region, so it is not read out every second.
    assert page.evaluate("""() => {
      const connection = document.getElementById('connection');
      return connection.closest('[aria-live], [role=status], [role=alert], [role=log]');
    }""") is None
    page.evaluate("""() => {
      window.announced = 0;
      new MutationObserver(() => { window.announced += 1; }).observe(
        document.getElementById('announcer'), {childList: true, characterData: true,
                                               subtree: true});
    }""")
    update(server, jobid, "w2", 5)  # progress is not news
    expect(page.locator("#workers .worker .pct").last).to_have_text("50%")
    ticks = page.evaluate("window.progressPage.stats.ticks")  # nor is a second going by
    wait_until(page, f"() => window.progressPage.stats.ticks > {ticks}")
    assert page.evaluate("window.announced") == 0
    assert announcer.text_content() == ""
    update(server, jobid, "w2", 10)
    expect(announcer).to_have_text("Job finished: 1 done, 1 failed.", timeout=WAIT_MS)
    watch.assert_clean()
    page.context.close()


def test_the_title_carries_the_percent_and_a_mark(browser: Browser, server: ServerProcess,
                                                  jobid: str) -> None:
    send(server.base_url, "create", jobid=jobid, desc="My job")
    update(server, jobid, "w1", 4)
    page, watch = open_show(browser, server, jobid)
    expect(page).to_have_title("40% My job")
    update(server, jobid, "w1", 10)
    expect(page).to_have_title("✓ 100% My job", timeout=WAIT_MS)
    update(server, jobid, "w2", 5, ok=0)
    expect(page).to_have_title("✗ 75% My job", timeout=WAIT_MS)
    page.reload()  # the server writes the same title before the script runs
    expect(page).to_have_title("✗ 75% My job")
    watch.assert_clean()
    page.context.close()


def test_the_page_sorts_names_exactly_as_the_server(browser: Browser, server: ServerProcess,
                                                    jobid: str) -> None:
    rng = random.Random(20261130)
    names = list(TRICKY_NAMES)
    for _ in range(3000):
        names.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 8))))
    names = list(dict.fromkeys(names))
    update(server, jobid, "w1", 1)
    page, watch = open_show(browser, server, jobid)
    in_page = page.evaluate("(names) => names.slice().sort(window.ProgressFormat.compareNames)",
                            names)
    assert in_page == sorted(names, key=views.natural_key)
    # Sorting is the same from either end: the comparison is a total order.
    assert page.evaluate("""(names) => names.slice().reverse()
                              .sort(window.ProgressFormat.compareNames)""", names) == in_page
    watch.assert_clean()
    page.context.close()
