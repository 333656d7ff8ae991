"""Command line: `python -m tornado_progress` and the `tornado-progress` console script.

One process, one event loop, every job in memory. SIGTERM and SIGINT set a shutdown event;
shutdown writes the final snapshot and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

from . import __version__, access
from .answer_cache import AnswerCache
from .app import make_app
from .bodies import BodyBuilder
from .collector import TICK_S, CollectionPolicy
from .config import LOOPBACK, Settings
from .demo import DEMO_STALE_AFTER_S, run_demo
from .handlers import HARD_REQUEST_LIMIT
from .limits import Limits
from .longpoll import Waiters
from .model import Store
from .notify import Notifier
from .render_handler import ChartRenderer
from .server import ProgressServer, serve
from .snapshots import Snapshotter

log = logging.getLogger("tornado_progress")
SWITCH_INTERVAL_S = 0.001
# Seconds that shutdown gives parked polls' answers and open requests to finish.
DRAIN_S = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tornado-progress",
        description="Live progress bars for cluster and multi-process jobs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--snapshot-dir", type=Path, default=Path("snapshots"),
                        help="folder of the msgpack snapshots")
    parser.add_argument("--snapshot-interval", type=_positive_float, default=5.0,
                        help="seconds between snapshots (written only if anything changed)")
    parser.add_argument("--keep-days", type=_positive_float, default=7.0,
                        help="days a job is kept after its last create or update (decimal)")
    parser.add_argument("--max-keep-days", type=_positive_float, default=30.0,
                        help="the longest a job's own maxage (create's parameter) may keep it, "
                             "in days (decimal)")
    parser.add_argument("--stale-after", type=_positive_float, default=None,
                        help="seconds without an update after which a running worker is stale "
                             f"(default: 300; with --demo, {DEMO_STALE_AFTER_S:g})")
    parser.add_argument("--poll-interval", type=_non_negative_float, default=0.08,
                        help="seconds: a job's viewers are answered at most this often; the "
                             "changes in between come in one answer")
    parser.add_argument("--viewer-share", type=_share, default=0.5,
                        help="the share of the server's time one job's viewers are held to "
                             "while workers' updates keep it busy (when it has time to spare, "
                             "they may take what it leaves idle): with many viewers their "
                             "answers come less often (every change still reaches each of "
                             "them, batched), so that workers' updates keep the rest")
    parser.add_argument("--max-jobs", type=_positive_int, default=Limits.max_jobs,
                        help="jobs held at once; a create past it answers 429")
    parser.add_argument("--max-workers-per-job", type=_positive_int,
                        default=Limits.max_workers_per_job,
                        help="workers in one job; a new worker past it answers 429")
    parser.add_argument("--max-workers", type=_positive_int, default=Limits.max_workers,
                        help="workers in all jobs together; a new worker past it answers 429")
    parser.add_argument("--max-request-bytes", type=_positive_int, default=64 * 1024,
                        help="largest request body; a larger one answers 413")
    parser.add_argument("--header-timeout", type=_positive_float, default=Settings.header_timeout,
                        help="seconds a new connection has to send its first request's headers")
    parser.add_argument("--idle-timeout", type=_positive_float, default=Settings.idle_timeout,
                        help="seconds a kept-alive connection may wait for its next request "
                             "(headers included)")
    parser.add_argument("--body-timeout", type=_positive_float, default=Settings.body_timeout,
                        help="seconds a request has to send its whole body")
    parser.add_argument("--max-connections", type=_positive_int,
                        default=Settings.max_connections,
                        help="open connections at once (also kept below the open-file limit); "
                             "past it the connection waiting longest for its request is closed")
    parser.add_argument("--max-connections-per-address", type=_positive_int,
                        default=Settings.max_connections_per_address,
                        help="open connections from one client address (an IPv6 /64); trusted "
                             "proxies are not limited by it")
    parser.add_argument("--send-timeout", type=_positive_float, default=Settings.send_timeout,
                        help="seconds an answer may go without the client reading any of it "
                             "before the connection is closed")
    parser.add_argument("--cache-mb", type=_positive_float,
                        default=Settings.cache_bytes / 2**20,
                        help="MiB of finished answers (JSON bodies and PNGs) kept for reuse")
    parser.add_argument("--max-render-pixels", type=_positive_int,
                        default=Settings.max_render_pixels,
                        help="device pixels one render may draw (4 bytes each); a larger "
                             "render answers 400")
    parser.add_argument("--require-key", action="store_true",
                        help="every new job must be created with key=...")
    parser.add_argument("--write-tokens", type=Path, metavar="FILE",
                        help="file of tokens, one a line: create, update and delete then need "
                             "one (token=... or Authorization: Bearer ...)")
    parser.add_argument("--new-jobs-per-minute", type=_non_negative_int,
                        default=Limits.new_jobs_per_minute,
                        help="new jobs one client address may make per minute (0: no limit)")
    parser.add_argument("--trusted-proxies", type=_networks, default=",".join(LOOPBACK),
                        metavar="ADDRESSES",
                        help="comma-separated addresses or networks whose X-Forwarded-* and "
                             "X-Real-Ip headers are believed ('' for none)")
    parser.add_argument("--frame-ancestors", type=_csp_sources,
                        default=Settings.frame_ancestors,
                        help="CSP frame-ancestors of the show page: who may embed it in a "
                             "frame (sources such as https://wiki.example, '*' for anyone, "
                             "\"'none'\" for nobody)")
    parser.add_argument("--list-jobs", action="store_true",
                        help="the home page lists the jobs and the jobs endpoint answers (off "
                             "by default: a job's id may be all that keeps it private)")
    parser.add_argument("--notify-allow", action="append", default=[], metavar="PREFIX",
                        help="a URL prefix that create's notify may name, e.g. "
                             "https://hooks.slack.com/ (repeatable; none: notify is off)")
    parser.add_argument("--demo", action="store_true",
                        help="also run simulated workers feeding the job demo1")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"], help="logging level")
    parser.add_argument("--access-log", action="store_true",
                        help="log every request (by default only 4xx and 5xx answers)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def _share(text: str) -> float:
    value = _positive_float(text)
    if not 0.01 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0.01 to 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        return 0.0 if float(text) == 0 else _positive_float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _csp_sources(text: str) -> str:
    """A CSP source list: one directive's value, never a second directive or header line."""
    if not text.strip() or any(character in text for character in ";,\r\n"):
        raise argparse.ArgumentTypeError(
            f"expected CSP sources separated by spaces, got {text!r}")
    return text.strip()


def _networks(text: str) -> tuple[str, ...]:
    try:
        return access.parse_networks(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def stale_after(args: argparse.Namespace) -> float:
    """--stale-after as given, else the demo's short one or the usual 300 s."""
    if args.stale_after is not None:
        return float(args.stale_after)
    return DEMO_STALE_AFTER_S if args.demo else 300.0


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host, port=args.port, snapshot_dir=args.snapshot_dir,
        snapshot_interval=args.snapshot_interval,
        limits=Limits(max_jobs=args.max_jobs, max_workers_per_job=args.max_workers_per_job,
                      max_workers=args.max_workers, keep_seconds=args.keep_days * 86400.0,
                      max_keep_seconds=args.max_keep_days * 86400.0,
                      require_key=args.require_key,
                      new_jobs_per_minute=args.new_jobs_per_minute),
        stale_after=stale_after(args), poll_interval=args.poll_interval,
        viewer_share=args.viewer_share,
        max_request_bytes=args.max_request_bytes, demo=args.demo,
        header_timeout=args.header_timeout, idle_timeout=args.idle_timeout,
        body_timeout=args.body_timeout, max_connections=args.max_connections,
        max_connections_per_address=args.max_connections_per_address,
        send_timeout=args.send_timeout,
        cache_bytes=int(args.cache_mb * 2**20), max_render_pixels=args.max_render_pixels,
        write_tokens=access.read_tokens(args.write_tokens) if args.write_tokens else frozenset(),
        trusted_proxies=args.trusted_proxies, frame_ancestors=args.frame_ancestors,
        list_jobs=args.list_jobs, notify_allow=tuple(args.notify_allow))


async def snapshot_loop(store: Store, snapshotter: Snapshotter, interval: float) -> None:
    """Every `interval` seconds: drop expired jobs, then snapshot if anything changed."""
    while True:
        await asyncio.sleep(interval)
        try:
            store.sweep()
            await snapshotter.save()
        except Exception:
            log.exception("snapshot failed; the next interval tries again")


async def collection_loop(policy: CollectionPolicy) -> None:
    """Every TICK_S: a full garbage collection if the frozen objects have grown enough to call
    for one (see collector.py; survivors are frozen as the collector's own passes end)."""
    while True:
        await asyncio.sleep(TICK_S)
        full = policy.tick()
        if full is not None:
            log.info("full garbage collection: %d objects kept, %d unreachable, %.1f ms",
                     full.kept, full.unreachable, 1000 * full.seconds)


async def main(settings: Settings) -> None:
    # The render threads hold the GIL between their C calls; the event loop gets it back after
    # at most this long (Python's default is 5 ms, a long wait for a request).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    store = Store(settings.limits)
    waiters = Waiters(settings.poll_interval, settings.viewer_share)
    snapshotter = Snapshotter(store, settings.snapshot_dir)
    snapshotter.load()
    collection = CollectionPolicy()
    collection.start()  # what start-up built is out of every later collection's way
    renderer = ChartRenderer(piece_bytes=settings.cache_bytes // 4)
    answers = AnswerCache(settings.cache_bytes)
    bodies = BodyBuilder(answers, settings.stale_after)
    notifier = Notifier(store, bodies) if settings.notify_allow else None
    app = make_app(store, waiters, snapshotter, settings, renderer, answers, bodies,
                   notifier=notifier)
    server = serve(app, settings, max(HARD_REQUEST_LIMIT, settings.max_request_bytes))
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown.set)
    tasks = [asyncio.create_task(snapshot_loop(store, snapshotter, settings.snapshot_interval)),
             asyncio.create_task(collection_loop(collection))]
    base_url = f"http://{settings.host if settings.host != '0.0.0.0' else '127.0.0.1'}" \
               f":{settings.port}"
    if settings.demo:
        tasks.append(asyncio.create_task(run_demo(base_url)))
    if notifier is not None:
        tasks.append(asyncio.create_task(notifier.run()))
    log.info("serving on %s/progress/ (%d jobs, %d workers loaded; at most %d connections)%s",
             base_url, len(store.jobs), store.worker_count, server.max_connections,
             "; demo at " + base_url + "/progress/show?jobid=demo1" if settings.demo else "")
    try:
        await shutdown.wait()
        log.info("shutting down: answering parked polls, then writing the final snapshot")
        await stop_serving(server, waiters, tasks)
    finally:
        # Whatever failed above, the state is written.
        await snapshotter.save(force=True)
        renderer.close()
        bodies.close()
        collection.stop()
    log.info("stopped")


async def stop_serving(server: ProgressServer, waiters: Waiters,
                       tasks: list[asyncio.Task[None]]) -> None:
    """Stops accepting, answers every parked poll with the state it has, gives those answers
    a moment to leave, and ends the background tasks, logging (not raising) their failures."""
    server.stop()
    waiters.release_all()
    # Requests under way (the polls just answered among them) finish before connections close.
    deadline = time.monotonic() + DRAIN_S
    while server.table.busy and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), DRAIN_S)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, Exception):
            log.error("background task %s had failed: %r", task.get_name(), outcome)


def run(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["watch"]:  # the terminal view; the standard library only
        from . import watch
        sys.exit(watch.main(arguments[1:]))
    args = parse_args(arguments)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.access_log:
        logging.getLogger("tornado.access").setLevel(logging.WARNING)
    asyncio.run(main(settings_from(args)))


if __name__ == "__main__":
    run()
