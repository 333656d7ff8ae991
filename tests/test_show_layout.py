"""The show page as people use it, on a phone (390 x 844) and a laptop (1280 x 800), in the
light and the dark theme: every worker id readable whole, state in words, no overlap, axe-core
finding nothing; the details of a worker by tap, click or keyboard; filter and state chips;
compact rows and the theme toggle, both remembered.

The job (200 workers with ids of up to 24 characters, the widest ASCII, Greek and Japanese
among them, 250 expected) is written as a snapshot that the server loads at start."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect

from tests.browser_support import (
    DESKTOP,
    PHONE,
    WAIT_MS,
    PageWatch,
    run_axe,
    show_url,
    wait_until,
    watched_page,
    write_job_snapshot,
)
from tests.serverproc import ServerProcess, running_server
from tornado_progress import palette
from tornado_progress.model import Worker

pytestmark = pytest.mark.browser
JOBID = "layout job"
LONG_DESC = ("failed: disk full on /scratch/node-12 while writing the calibration tables for "
             "scan 7 of 40")


def worker_ids() -> list[str]:
    """200 ids of up to 24 characters: the issue's calibrator1 and calibrator2, the widest
    ASCII letters, hosts, Greek and Japanese (two columns a character)."""
    ids = [f"calibrator{n}" for n in range(1, 81)]
    ids += ["W" * 24, "M" * 24, "m" * 24, "@" * 24, "W" * 11 + " " + "W" * 12]
    ids += [f"node-{n:04d}.cluster-west{n % 10}" for n in range(60)]
    ids += [f"σταθμός-Ωμέγα-{n:02d}" for n in range(25)]
    ids += [f"観測ノード{n:02d}計算クラスタ東京" for n in range(30)]
    assert len(ids) == 200 and max(map(len, ids)) == 24
    return ids


def state_of(index: int) -> str:
    if index == 0 or index % 9 == 4:
        return "failed"
    return "done" if index % 7 == 3 else "stale" if index % 11 == 5 else "running"


def job_workers() -> list[Worker]:
    now = time.time()
    workers = []
    for index, workid in enumerate(worker_ids()):
        state = state_of(index)
        current = 50 if state == "done" else index % 50
        desc = LONG_DESC if index == 0 else f"scan {index % 40} of 40"
        updated = now - (900 if state == "stale" else index % 30)
        workers.append(Worker(workid, current, 50, desc, state != "failed", updated, 0,
                              0.25 + index % 4))
    return workers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    snapshots = tmp_path_factory.mktemp("layout") / "snapshots"
    write_job_snapshot(snapshots, JOBID, job_workers(), desc="Calibration", expected=250)
    with running_server(snapshots, "--stale-after", "600") as process:
        yield process


def open_page(browser: Browser, server: ServerProcess, **options: Any) -> tuple[Page, PageWatch]:
    page, watch = watched_page(browser, server.base_url, **options)
    page.goto(show_url(server.base_url, JOBID))
    expect(page.locator("#show.is-live")).to_be_visible(timeout=WAIT_MS)
    wait_until(page, "() => window.progressPage.stats.shownAt > 0")
    return page, watch


def row(page: Page, workid: str) -> Locator:
    return page.locator("#workers .worker").filter(
        has=page.locator(".workid-text", has_text=re.compile(f"^{re.escape(workid)}$")))


def css_rgb(name: str, theme: str) -> str:
    red, green, blue = palette.THEMES[theme][name]
    return f"rgb({red}, {green}, {blue})"


# Scrolls the whole list a screenful at a time; for every row drawn, its id, whether the id's
# text fits its box (no overflow either way), whether the row holds the id, and whether rows
# overlap.
READ_EVERY_ROW_JS = """async () => {
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  const seen = new Set();
  const bad = [];
  window.scrollTo(0, 0);
  for (;;) {
    await frame();
    await frame();
    let above = -Infinity;
    for (const text of document.querySelectorAll('#workers .workid-text')) {
      const id = text.textContent;
      const rowBox = text.closest('.worker').getBoundingClientRect();
      const box = text.getBoundingClientRect();
      seen.add(id);
      if (text.scrollWidth > text.clientWidth || text.scrollHeight > text.clientHeight)
        bad.push(`${id}: text overflows its box`);
      if (box.bottom > rowBox.bottom + 0.5 || box.right > rowBox.right + 0.5 || box.width < 1)
        bad.push(`${id}: outside its row`);
      if (rowBox.top < above - 0.5) bad.push(`${id}: overlaps the row above`);
      above = rowBox.bottom;
    }
    if (scrollY + innerHeight >= document.documentElement.scrollHeight - 1) break;
    window.scrollBy(0, Math.floor(innerHeight * 0.8));
  }
  return {seen: [...seen], bad};
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_id_reads_whole_in_both_themes_and_axe_finds_nothing(
        browser: Browser, server: ServerProcess, size: ViewportSize, theme: str) -> None:
    page, watch = open_page(browser, server, viewport=size, color_scheme=theme)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == css_rgb(
        "background", theme)
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == theme
    # State in words beside each bar, whatever the width; calibrator1 and 2 side by side.
    page.select_option("#sort", "name")
    failed = row(page, "calibrator1")
    expect(failed.locator(".state-word")).to_have_text("failed")
    for cell in (".state-word", ".pct", ".count", ".age", ".rate", ".eta"):
        expect(failed.locator(cell)).to_be_visible()
    expect(row(page, "calibrator2").locator(".state-word")).to_have_text("running")
    assert run_axe(page) == []
    result = page.evaluate(READ_EVERY_ROW_JS)
    assert result["bad"] == []
    assert sorted(result["seen"]) == sorted(worker_ids())
    assert page.evaluate("document.querySelectorAll('#workers .worker').length") < 100
    watch.assert_clean()
    page.context.close()


def test_tapping_a_row_opens_its_details(browser: Browser, server: ServerProcess) -> None:
    page, watch = open_page(browser, server, viewport=PHONE, has_touch=True, is_mobile=True)
    row(page, "calibrator1").locator(".bar").tap()
    details = page.locator("#details")
    expect(details).to_be_visible()
    expect(details.locator("[data-field=workid]")).to_have_text("calibrator1")
    expect(details.locator("[data-field=state]")).to_have_text("failed")
    expect(details.locator("[data-field=desc]")).to_have_text(LONG_DESC)
    expect(details.locator("[data-field=counts]")).to_have_text("0 of 50")
    expect(details.locator("[data-field=rate]")).to_have_text("15/min")
    expect(details.locator("[data-field=updated]")).to_contain_text("ago (at ")
    assert run_axe(page) == []
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()
    expect(row(page, "calibrator1").locator(".workid")).to_be_focused()
    watch.assert_clean()
    page.context.close()


def test_every_control_and_row_works_from_the_keyboard(browser: Browser,
                                                       server: ServerProcess) -> None:
    page, watch = open_page(browser, server, viewport=DESKTOP)
    reached = []
    for _ in range(20):  # Tab from the top of the page to the list
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id || document.activeElement.className")
        reached.append(focused)
        if focused == "workid":
            break
    chips = [f"chip chip-{state}" for state in ("running", "stale", "done", "failed", "waiting")]
    assert reached[:-1] == ["notify", "theme", *chips, "filter", "sort", "density"]
    focused_id = "document.activeElement.textContent"
    first = page.evaluate(focused_id)
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused_id) != first
    page.keyboard.press("End")  # the last of 200 rows: drawn on the way, focused
    page.wait_for_function(
        "() => { const ids = document.querySelectorAll('#workers .workid-text');"
        " return ids.length > 0 && document.activeElement.textContent === "
        "ids[ids.length - 1].textContent; }", timeout=WAIT_MS)
    last = page.locator("#workers .workid-text").last.text_content()
    assert page.evaluate(focused_id) == last
    page.keyboard.press("Enter")
    expect(page.locator("#details [data-field=workid]")).to_have_text(last or "")
    page.keyboard.press("Escape")
    expect(page.locator("#details")).to_be_hidden()
    expect(row(page, last or "").locator(".workid")).to_be_focused()
    page.keyboard.press("Home")  # the first row is drawn again on the way up, then focused
    page.wait_for_function("(first) => document.activeElement.textContent === first", arg=first,
                           timeout=WAIT_MS)
    assert page.evaluate(focused_id) == first
    # A chip toggles with the keyboard too.
    page.focus(".chip-failed")
    page.keyboard.press("Enter")
    expect(page.locator(".chip-failed")).to_have_attribute("aria-pressed", "true")
    watch.assert_clean()
    page.context.close()


def test_filter_box_and_state_chips(browser: Browser, server: ServerProcess) -> None:
    page, watch = open_page(browser, server, viewport=DESKTOP)
    states = [state_of(index) for index in range(200)]
    counts = {state: states.count(state) for state in ("running", "stale", "done", "failed")}
    for state, count in counts.items():
        expect(page.locator(f"#count-{state}")).to_have_text(str(count))
    expect(page.locator("#count-waiting")).to_have_text("50")
    expect(page.locator("#worker-count")).to_have_text("200 workers of 250 expected")
    page.click(".chip-failed")
    expect(page.locator("#worker-count")).to_have_text(
        f"Showing {counts['failed']} of 200 workers of 250 expected")
    expect(page.locator("#workers .worker:not(.is-failed)")).to_have_count(0)
    page.click(".chip-stale")
    shown = counts["failed"] + counts["stale"]
    expect(page.locator("#worker-count")).to_contain_text(f"Showing {shown} of 200")
    page.click(".chip-failed")
    page.click(".chip-stale")
    expect(page.locator("#worker-count")).to_have_text("200 workers of 250 expected")
    # The box looks in ids and descs, in any case.
    page.fill("#filter", "CALIBRATOR1")
    expect(page.locator("#worker-count")).to_contain_text("Showing 11 of 200")  # 1, 10 to 19
    page.fill("#filter", "disk full")
    expect(page.locator("#workers .workid-text")).to_have_text(["calibrator1"])
    page.fill("#filter", "no such worker")
    expect(page.locator("#empty")).to_have_text("No worker matches the filter.")
    page.fill("#filter", "")
    page.click(".chip-waiting")  # workers not heard from have no rows: a sentence says so
    expect(page.locator("#empty")).to_contain_text("50 expected workers have not reported yet")
    expect(page.locator("#workers .worker")).to_have_count(0)
    watch.assert_clean()
    page.context.close()


def test_compact_rows_and_the_theme_are_remembered(browser: Browser,
                                                   server: ServerProcess) -> None:
    page, watch = open_page(browser, server, viewport=DESKTOP, color_scheme="light")
    height = "document.querySelector('#workers .worker').offsetHeight"
    normal = page.evaluate(height)
    page.click("#density")
    expect(page.locator("#density")).to_have_attribute("aria-pressed", "true")
    wait_until(page, f"() => {height} < {normal}")
    page.click("#theme")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("#theme")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == css_rgb(
        "background", "dark")
    page.reload()
    expect(page.locator("#show.is-live")).to_be_visible()
    expect(page.locator("#density")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("getComputedStyle(document.documentElement).colorScheme") == "dark"
    # Back to the system's theme: the choice is forgotten, the page follows the system.
    page.click("#theme")
    assert page.evaluate("document.documentElement.dataset.theme") is None
    page.emulate_media(color_scheme="dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == css_rgb(
        "background", "dark")
    expect(page.locator("#theme")).to_have_attribute("aria-pressed", "true")
    watch.assert_clean()
    page.context.close()


def test_the_page_without_javascript_follows_the_dark_theme(
        browser: Browser, server: ServerProcess) -> None:
    page, watch = watched_page(browser, server.base_url, java_script_enabled=False,
                               color_scheme="dark")
    with page.expect_response(re.compile(r"/progress/render\?.*theme=dark")) as png:
        page.goto(show_url(server.base_url, JOBID))
    assert png.value.status == 200
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == css_rgb(
        "background", "dark")
    page.context.close()
    assert watch.foreign_requests() == []


def test_no_width_from_320_px_to_4k_scrolls_sideways(browser: Browser,
                                                    server: ServerProcess) -> None:
    page, watch = open_page(browser, server, viewport={"width": 320, "height": 700})
    for width in (320, 390, 600, 859, 860, 1099, 1100, 1280, 1920, 3840):
        page.set_viewport_size({"width": width, "height": 700})
        wait_until(page, """() => new Promise((done) => requestAnimationFrame(() =>
          requestAnimationFrame(() => done(true))))""")
        overflow = page.evaluate("""() => {
          const wide = document.documentElement.scrollWidth > innerWidth;
          const cut = [...document.querySelectorAll('#workers .workid-text')].filter(
            (text) => text.scrollWidth > text.clientWidth).map((text) => text.textContent);
          return {wide, cut};
        }""")
        assert overflow == {"wide": False, "cut": []}, width
    watch.assert_clean()
    page.context.close()
