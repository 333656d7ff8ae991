"""What the show page costs in a real browser: update-to-browser latency, the time to apply a
1,000-worker update, the load of a 100,000-worker job, and applying a 1,000-change update to it.

Run: `.venv/bin/python -m bench.browser_bench [--updates 200] [--workers 1000] [--rounds 7]
[--big 100000] [--big-rounds 3] [--changes 1000]`

Everything runs on loopback: the real server process (tests/serverproc.py) and the system's
headless Chromium (tests/browser_support.py). Latency is measured inside the page, on one clock:
the page sends an `update` with fetch() and a MutationObserver notes when the worker's row shows
it, so no clocks of two processes are compared. The path measured is the whole one: the update
request, the server waking the page's parked long poll, the poll answer, and the page applying
it. Apply times come from the page's own `performance.now()` around its apply function, and
from the start of the apply to the next frame, which includes style, layout and paint.

The big job is written as a snapshot that a second server loads at start. Its load is timed by
the page's clock from the navigation's start: the server's answer (first and last byte), the
scripts' start, and the first rows drawn; the longest task (PerformanceObserver 'longtask')
says whether anything held the page. The 1,000-change update is a delta of 1,000 workers spread
over the job, applied as a poll answer is.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from tests.browser_support import (
    LONG_TASKS_JS,
    launch,
    send,
    send_many,
    show_url,
    wait_until,
    watched_page,
    write_job_snapshot,
)
from tests.serverproc import running_server
from tornado_progress.model import Worker

# Between two updates: more than the server's default --poll-interval (80 ms), so that each
# update finds its job quiet and the figure is the delivery itself; `--pause-ms 20` measures
# updates that come faster than the page is answered, which the server paces.
PAUSE_MS = 100
# Bounds, so that a broken page fails the bench instead of hanging it.
SEEN_TIMEOUT_MS = 5_000
BIG_LOAD_TIMEOUT_MS = 60_000
BIG_JOBID = "bench big"

LATENCY_JS = """
async ({count, pauseMs, timeoutMs}) => {
  const row = [...document.querySelectorAll('#workers .worker')]
    .find((r) => r.querySelector('.workid-text').textContent === 'latency');
  const cell = row.querySelector('.count');
  const jobid = JSON.parse(document.getElementById('initial-job').textContent).jobid;
  const dom = [];
  const frame = [];
  for (let i = 1; i <= count; i += 1) {
    const wanted = `${i}/${count}`;
    const seen = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`update ${i} not shown`)), timeoutMs);
      const observer = new MutationObserver(() => {
        if (cell.textContent !== wanted) return;
        observer.disconnect();
        clearTimeout(timer);
        resolve(performance.now());
      });
      observer.observe(cell, {childList: true, characterData: true, subtree: true});
    });
    const body = new URLSearchParams({jobid, workid: 'latency', current: i, total: count});
    const started = performance.now();
    fetch('update', {method: 'POST', body});
    const shown = await seen;
    const painted = await new Promise((resolve) =>
      requestAnimationFrame(() => setTimeout(() => resolve(performance.now()), 0)));
    dom.push(shown - started);
    frame.push(painted - started);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  return {dom, frame};
}
"""

APPLY_JS = """
async ({rounds}) => {
  const jobid = JSON.parse(document.getElementById('initial-job').textContent).jobid;
  const status = await (await fetch(`status?jobid=${encodeURIComponent(jobid)}`)).json();
  const page = window.progressPage;
  const nextFrame = () => new Promise((resolve) =>
    requestAnimationFrame(() => setTimeout(() => resolve(performance.now()), 0)));
  const measure = async (body) => {
    await nextFrame();
    const started = performance.now();
    await page.apply(body);
    const script = page.stats.lastApplyMs;
    return {script, frame: (await nextFrame()) - started};
  };
  const results = {fresh: [], changed: [], delta: []};
  let step = 0;
  for (let round = 0; round < rounds; round += 1) {
    // A re-created job: drop 1,000 rows, build 1,000 new ones.
    step += 1;
    const generation = round % 2 ? status.generation : -round - 1;
    results.fresh.push(await measure({...status, generation}));
    // Every worker moved: 1,000 rows rewritten, none created.
    step += 1;
    const workers = status.workers.map((w) => ({
      ...w, current: (w.current + step) % (w.total + 1), updated: w.updated + step}));
    results.changed.push(await measure({...status, generation, workers}));
    // The usual case: one worker of 1,000 changed.
    const one = {...workers[round], current: (workers[round].current + 1) % 11,
                 updated: workers[round].updated + 0.5};
    results.delta.push(await measure({...status, generation, full: false, workers: [one]}));
  }
  return {results, workers: page.workerCount()};
}
"""


LOAD_JS = """() => {
  const [navigation] = performance.getEntriesByType('navigation');
  const stats = window.progressPage.stats;
  return {firstByte: navigation.responseStart, lastByte: navigation.responseEnd,
          scripts: stats.startedAt, shown: stats.shownAt,
          longest: Math.max(0, ...window.longTasks)};
}"""

# A delta of `changes` workers spread over the whole job, applied as a poll answer is: the
# script's time and the time to the next frame, with the longest task meanwhile.
BIG_APPLY_JS = """
async ({rounds, changes}) => {
  const jobid = JSON.parse(document.getElementById('initial-job').textContent).jobid;
  const status = await (await fetch(`status?jobid=${encodeURIComponent(jobid)}`)).json();
  const page = window.progressPage;
  const nextFrame = () => new Promise((resolve) =>
    requestAnimationFrame(() => setTimeout(() => resolve(performance.now()), 0)));
  const samples = [];
  const step = Math.floor(status.workers.length / changes);
  for (let round = 1; round <= rounds; round += 1) {
    const workers = [];
    for (let i = 0; i < changes; i += 1) {
      const w = status.workers[i * step + round];
      workers.push({...w, current: (w.current + round) % (w.total + 1),
                    updated: w.updated + round});
    }
    await nextFrame();
    window.longTasks.length = 0;
    const started = performance.now();
    await page.apply({...status, full: false, workers});
    const script = page.stats.lastApplyMs;
    const frame = (await nextFrame()) - started;
    samples.push({script, frame, longest: Math.max(0, ...window.longTasks)});
  }
  return samples;
}
"""


def big_workers(count: int) -> list[Worker]:
    """A job's workers as a cluster reports them: mostly running, some done, a few failed."""
    now = time.time()
    return [Worker(f"worker{index}", index % 101, 100, f"chunk {index % 40} of the scan",
                   index % 997 != 1, now - index % 60, 0, 0.5 + index % 5)
            for index in range(count)]


def nearest_rank(samples: list[float], quantile: float) -> float:
    """The sample below which `quantile` of them lie (nearest-rank, no interpolation)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def measure_latency(page: Page, base_url: str, updates: int, pause_ms: float
                    ) -> dict[str, list[float]]:
    jobid = "bench latency"
    send(base_url, "create", jobid=jobid, desc="latency bench")
    send(base_url, "update", jobid=jobid, workid="latency", current=0, total=updates)
    page.goto(show_url(base_url, jobid))
    page.wait_for_selector("#show.is-live")
    result: dict[str, list[float]] = page.evaluate(
        LATENCY_JS, {"count": updates, "pauseMs": pause_ms, "timeoutMs": SEEN_TIMEOUT_MS})
    return result


def measure_apply(page: Page, base_url: str, workers: int, rounds: int) -> dict[str, Any]:
    jobid = "bench apply"
    send(base_url, "create", jobid=jobid, desc="apply bench")
    send_many(base_url, "update", (
        {"jobid": jobid, "workid": f"worker{index}", "current": index % 10, "total": 10,
         "desc": f"chunk {index} of the observation"} for index in range(workers)))
    page.goto(show_url(base_url, jobid))
    page.wait_for_selector("#show.is-live")
    result: dict[str, Any] = page.evaluate(APPLY_JS, {"rounds": rounds})
    return result


def open_big(browser: Any, base_url: str) -> tuple[Any, Any]:
    """A fresh page with the big job loaded and its first rows drawn, long tasks recorded."""
    page, watch = watched_page(browser, base_url, viewport={"width": 1280, "height": 800})
    page.add_init_script(LONG_TASKS_JS)
    page.goto(show_url(base_url, BIG_JOBID), timeout=BIG_LOAD_TIMEOUT_MS)
    wait_until(page, "() => window.progressPage && window.progressPage.stats.shownAt",
               BIG_LOAD_TIMEOUT_MS)
    return page, watch


def measure_big(browser: Any, workers: int, rounds: int, changes: int) -> dict[str, Any]:
    """Loads of a `workers`-worker job (each a fresh page), then `changes`-worker deltas."""
    with tempfile.TemporaryDirectory() as folder:
        snapshots = Path(folder) / "snapshots"
        write_job_snapshot(snapshots, BIG_JOBID, big_workers(workers), desc="big job bench")
        with running_server(snapshots) as server:
            loads = []
            for _ in range(rounds):
                page, watch = open_big(browser, server.base_url)
                loads.append(page.evaluate(LOAD_JS))
                watch.assert_clean()
                page.context.close()
            page, watch = open_big(browser, server.base_url)
            applied = page.evaluate(BIG_APPLY_JS, {"rounds": rounds * 3, "changes": changes})
            rows = page.evaluate("window.progressPage.renderedRows()")
            watch.assert_clean()
            page.context.close()
    return {"loads": loads, "applied": applied, "rows": rows}


def report_big(big: dict[str, Any], workers: int, changes: int) -> None:
    loads = big["loads"]
    print(f"load of a {workers:,}-worker job ({len(loads)} fresh pages, 1280 x 800; times from "
          "the navigation's start):")
    report("server's first byte", [load["firstByte"] for load in loads])
    report("last byte", [load["lastByte"] for load in loads])
    report("scripts start", [load["scripts"] for load in loads])
    report("first rows drawn", [load["shown"] for load in loads])
    report("page side: last byte to first rows drawn",
           [load["shown"] - load["lastByte"] for load in loads])
    report("longest task during the load", [load["longest"] for load in loads])
    applied = big["applied"]
    print(f"apply a {changes:,}-change update to it ({len(applied)} rounds; "
          f"{big['rows']} row elements at the end):")
    report("script", [sample["script"] for sample in applied])
    report("to the next frame", [sample["frame"] for sample in applied])
    report("longest task", [sample["longest"] for sample in applied])


def report(name: str, samples: list[float]) -> None:
    """Median, p99 (when there are enough samples for one) and max of `samples` in ms."""
    p99 = f"p99 {nearest_rank(samples, 0.99):7.2f} ms   " if len(samples) >= 100 else " " * 18
    print(f"  {name:<48} median {statistics.median(samples):7.2f} ms   {p99}"
          f"max {max(samples):7.2f} ms   (n={len(samples)})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=200, help="updates timed for latency")
    parser.add_argument("--workers", type=int, default=1000, help="workers of the apply bench")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each apply case")
    parser.add_argument("--big", type=int, default=100_000,
                        help="workers of the big job whose load is timed (0: none)")
    parser.add_argument("--big-rounds", type=int, default=3,
                        help="loads of the big job (and three times as many deltas)")
    parser.add_argument("--changes", type=int, default=1000,
                        help="workers changed in each delta applied to the big job")
    parser.add_argument("--pause-ms", type=float, default=PAUSE_MS,
                        help="pause between timed updates; below the server's --poll-interval "
                             "(80 ms) updates come faster than viewers are answered, and the "
                             "latency measures the pacing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, \
            running_server(Path(folder) / "snapshots") as server, \
            sync_playwright() as playwright:
        browser = launch(playwright)
        page, watch = watched_page(browser, server.base_url)
        latency = measure_latency(page, server.base_url, args.updates, args.pause_ms)
        applied = measure_apply(page, server.base_url, args.workers, args.rounds)
        page.context.close()
        big = measure_big(browser, args.big, args.big_rounds, args.changes) if args.big else None
        browser.close()
    watch.assert_clean()
    print(f"browser bench: Chromium headless, loopback, {time.perf_counter() - started:.0f} s")
    print(f"update-to-browser latency ({args.updates} updates sent from the page, "
          f"{args.pause_ms:g} ms apart):")
    report("to the row's DOM change", latency["dom"])
    report("to the next frame after it", latency["frame"])
    results = applied["results"]
    print(f"apply a {args.workers:,}-worker update ({args.rounds} rounds; "
          f"{applied['workers']:,} workers held at the end):")
    for key, name in (("fresh", "re-created job, all rows new"),
                      ("changed", "every row changed"), ("delta", "one row changed")):
        report(f"{name}: script", [sample["script"] for sample in results[key]])
        report(f"{name}: to the next frame", [sample["frame"] for sample in results[key]])
    if big is not None:
        report_big(big, args.big, args.changes)


if __name__ == "__main__":
    main()
