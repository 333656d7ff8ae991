"""The benchmark of issue 5: every scenario, one table, the same figures as JSON.

Run: `make bench`, or `.venv/bin/python -m bench [--rounds 3] [--seconds 3] [--only 1,3]`

Scenarios: 1 update load against the floors (a bare RequestHandler, the raw delegate) and the
peers; 2 the same with 100 viewers; 3 snapshots of 100,000 workers; 4 memory; 5 render; 6 the
poll delta; 7 start-up; 8 scale-out behind nginx; 9 `updates` batches against single updates;
10 and 11 1,000 and 5,000 viewers of one job updated every 100 ms; 12 waking 10,000 parked
polls. Each value is the median over the rounds, its min-max beside it.

Systems run on 127.0.0.1 only, each its own process, all stopped at the end (on errors too).
The table goes to stdout, progress to stderr, and the figures with every raw measurement to
bench/results.json.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.load import KEPT_DISTURBED, REPEAT_BUDGET_S, REPEATED
from bench.report import Row, machine, table, write_json
from bench.scenarios_batch import batch_rounds
from bench.scenarios_crowd import VIEWER_COUNTS, crowd_rounds, wake_rounds
from bench.scenarios_load import Bench, snapshot_rounds, update_rounds
from bench.scenarios_scale import scale_rounds
from bench.scenarios_state import memory_and_startup, render_and_poll
from bench.systems import Fleet

Group = Callable[[Bench], tuple[list[Row], dict[str, Any]]]


def crowd(number: int) -> Group:
    """Scenario `number`'s crowd of viewers (VIEWER_COUNTS)."""
    return lambda bench: crowd_rounds(bench, number, VIEWER_COUNTS[number])


# Each group of scenarios: which scenario numbers it covers, and what runs it.
GROUPS: list[tuple[str, tuple[int, ...], Group]] = [
    ("update load, with and without viewers", (1, 2), update_rounds),
    ("snapshots of 100,000 workers", (3,), snapshot_rounds),
    ("memory and start-up", (4, 7), memory_and_startup),
    ("render and poll payload", (5, 6), render_and_poll),
    ("update throughput through nginx, 1/2/3 backends vs one direct", (8,), scale_rounds),
    ("worker updates through updates, batches of 100, vs single update", (9,), batch_rounds),
    ("1,000 viewers of one job updated every 100 ms", (10,), crowd(10)),
    ("5,000 viewers of one job updated every 100 ms", (11,), crowd(11)),
    ("waking 10,000 parked polls", (12,), wake_rounds),
]
ALL_SCENARIOS = sorted(number for _, numbers, _ in GROUPS for number in numbers)
RESULTS = Path(__file__).resolve().parent / "results.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each A/B comparison (the median is reported)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="seconds of each wrk measurement (whole, at most 5)")
    parser.add_argument("--only", default=",".join(str(number) for number in ALL_SCENARIOS),
                        help="comma-separated scenario numbers to run")
    parser.add_argument("--ours-arg", action="append", default=[], metavar="OPTION",
                        help="an option for our server, e.g. --ours-arg=--poll-interval=0.05 "
                             "(repeatable; memory and start-up keep the defaults)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    # wrk's -d takes whole seconds only.
    if not 1 <= args.rounds <= 9 or not (1 <= args.seconds <= 5 and args.seconds.is_integer()):
        parser.error("--rounds must be 1 to 9 and --seconds a whole number 1 to 5")
    return args


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    wanted = {int(number) for number in args.only.split(",") if number.strip()}
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tornado-progress-bench-") as folder, \
            Fleet(Path(folder), tuple(args.ours_arg)) as fleet:
        bench = Bench(fleet, Path(folder), args.rounds, args.seconds)
        for title, numbers, group in GROUPS:
            if not wanted.intersection(numbers):
                continue
            began = time.perf_counter()
            print(f"scenarios {'+'.join(map(str, numbers))}: {title} ...", file=sys.stderr,
                  flush=True)
            try:
                group_rows, raw[title] = group(bench)
            except Exception as error:  # one broken group must not hide the others' figures
                traceback.print_exc()
                fleet.stop_all()
                group_rows = [Row(number, f"failed: {type(error).__name__}: {error}"[:90],
                                  None, "") for number in numbers]
                raw[title] = {"error": repr(error)}
            rows += [row for row in group_rows if row.scenario in wanted]
            print(f"  done in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return sorted(rows, key=lambda row: row.scenario), raw


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A SIGTERM (make interrupted, a timeout) unwinds like an exception: every system stops.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    began = time.perf_counter()
    rows, raw = run(args)
    wall = time.perf_counter() - began
    host = machine()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {host['cores']} cores, "
          f"{host['memory_gib']} GiB, {host['cpu'] or 'unknown CPU'}, Python {host['python']}, "
          f"Linux {host['kernel']}; python -m bench --rounds {args.rounds} "
          f"--seconds {args.seconds:g}{''.join(' --ours-arg=' + a for a in args.ours_arg)}\n")
    print(table(rows))
    missed = [row for row in rows if row.verdict in ("MISS", "ERROR")]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} rows pass or are reported; "
          f"{len(missed)} goal(s) missed; {wall:.0f} s; rounds {args.rounds} x "
          f"{args.seconds:g} s; {len(REPEATED)} run(s) repeated because other processes "
          f"took CPU, {len(KEPT_DISTURBED)} disturbed run(s) kept once the "
          f"{REPEAT_BUDGET_S:.0f} s for repeats were spent; figures in {args.out}")
    write_json(args.out, rows, raw, {"rounds": args.rounds, "seconds": args.seconds,
                                     "only": args.only, "ours_arg": args.ours_arg}, wall)
    return 1 if any(row.verdict == "ERROR" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
