"""A sampling profile (py-spy) of the server's update path under the benchmark's wrk load.

Run: `.venv/bin/python -m bench.profile_update [--viewers] [--seconds 8] [--py-spy PATH]`

py-spy is not a project dependency: install it anywhere outside the project, e.g.
`python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy`, and pass its path (or have
it on PATH). Prints the top functions by own time (the frame on top of the stack) with their
total (inclusive) share, out of the samples in which the server was busy, and the raw
collapsed stacks' path for a flame graph, and the time by layer (Tornado's HTTP code, its
streams, asyncio, this package). With `--viewers`, 100 viewers long-poll meanwhile
(scenario 2).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import CONNECTIONS, UPDATE_PATHS, write_script
from bench.scenarios_load import PROBE_VIEWERS, VIEWERS
from bench.systems import Fleet, System
from bench.viewers import ViewerProcess

RATE_HZ = 250


def find_py_spy(given: str | None) -> str:
    for candidate in (given, shutil.which("py-spy"), "/tmp/pyspy-venv/bin/py-spy"):
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("py-spy not found: pass --py-spy PATH (see this module's docstring)")


def record(py_spy: str, system: System, script: Path, seconds: float, out: Path) -> None:
    """wrk for seconds + 2 against `system`; py-spy samples it for `seconds` in the middle."""
    wrk = subprocess.Popen(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds + 2:g}s", "-s",
                            str(script), system.base + UPDATE_PATHS["ours"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        subprocess.run([py_spy, "record", "--pid", str(system.process.pid), "--duration",
                        f"{seconds:g}", "--rate", str(RATE_HZ), "--format", "raw",
                        "--function", "--nonblocking", "--output", str(out)],
                       check=True, timeout=seconds + 30, capture_output=True)
    finally:
        wrk.wait(seconds + 20)


def top(collapsed: Path, count: int, seconds: float) -> str:
    """Top functions by own samples, from py-spy's raw (collapsed stacks) output."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = stack.split(";")[1:]  # the first is the process/thread name
        if not frames:
            continue
        hits = int(number)
        samples += hits
        own[frames[-1]] += hits
        for frame in set(frames):
            total[frame] += hits
    busy = samples / (RATE_HZ * seconds)
    lines = [f"{samples} busy samples at {RATE_HZ} Hz over {seconds:g} s "
             f"(the server was busy in about {100 * busy:.0f} % of them)",
             f"{'own %':>6} {'total %':>7}  function (file)"]
    for frame, hits in own.most_common(count):
        lines.append(f"{100 * hits / samples:6.1f} {100 * total[frame] / samples:7.1f}  "
                     f"{shorten(frame)}")
    packages: collections.Counter[str] = collections.Counter()
    for frame, hits in own.items():
        packages[package(frame)] += hits
    lines.append("own time by package: " + ", ".join(
        f"{name} {100 * hits / samples:.0f} %" for name, hits in packages.most_common()))
    lines.append("own time by layer (the standard library's helpers, such as re, charged to "
                 "their caller): " + ", ".join(
                     f"{name} {100 * hits / samples:.0f} %"
                     for name, hits in layers(collapsed).most_common()))
    return "\n".join(lines)


# Layers by the file of a frame: Tornado's HTTP/1.1 code (request_head.py, this package's
# version of a part of it, included), its streams, its futures and loop, asyncio with the
# selector, this package. Other files are helpers, charged to their caller.
LAYERS = (("tornado_progress/request_head.py", "Tornado HTTP"),
          ("tornado/http1connection.py", "Tornado HTTP"), ("tornado/httputil.py", "Tornado HTTP"),
          ("tornado/httpserver.py", "Tornado HTTP"), ("tornado/escape.py", "Tornado HTTP"),
          ("tornado/iostream.py", "Tornado IOStream"), ("tornado/", "Tornado gen/ioloop"),
          ("asyncio/", "asyncio"), ("selectors.py", "asyncio"),
          ("tornado_progress/", "tornado_progress"), ("bench/", "bench"))


def layer(frames: list[str]) -> str:
    """The layer of the innermost frame that belongs to one (see LAYERS)."""
    for frame in reversed(frames):
        path = shorten(frame).partition("(")[2]
        for prefix, name in LAYERS:
            if path.startswith(prefix):
                return name
    return "other"


def layers(collapsed: Path) -> collections.Counter[str]:
    """Samples by layer, from py-spy's raw output."""
    by_layer: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")[1:]
        if frames and number.isdigit():
            by_layer[layer(frames)] += int(number)
    return by_layer


def package(frame: str) -> str:
    """tornado, asyncio, tornado_progress, ... from a frame's file."""
    path = shorten(frame).partition("(")[2]
    if path.startswith(("tornado_progress/", "bench/")):
        return path.split("/")[0]
    name = path.split("/")[0].split(".")[0].split(":")[0]
    return name or "other"


def shorten(frame: str) -> str:
    """`handle (/work/main/.venv/lib/python3.11/site-packages/tornado/web.py)` -> tornado/web.py"""
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in frame:
            head, _, tail = frame.partition(marker)
            return head.split("(")[0] + "(" + tail
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--py-spy", dest="py_spy")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--viewers", action="store_true", help="with 100 viewers polling")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, help="where to keep the collapsed stacks")
    args = parser.parse_args()
    py_spy = find_py_spy(args.py_spy)
    with tempfile.TemporaryDirectory(prefix="tornado-progress-profile-") as folder, \
            Fleet(Path(folder)) as fleet:
        work = Path(folder)
        system = fleet.product(work / "snapshots")
        script = write_script(work, "ours")
        subprocess.run(["wrk", "-t1", "-c32", "-d1s", "-s", str(script), system.base
                        + UPDATE_PATHS["ours"]], check=True, capture_output=True)
        watchers: list[ViewerProcess] = []
        try:
            if args.viewers:
                watchers = [ViewerProcess(system.port, args.seconds + 4, "--viewers",
                                          str(VIEWERS)),
                            ViewerProcess(system.port, args.seconds + 4, "--viewers", "0",
                                          "--probe-viewers", str(PROBE_VIEWERS))]
                for watcher in watchers:
                    watcher.wait_ready()
            out = args.out or work / "profile.txt"
            record(py_spy, system, script, args.seconds, out)
        finally:
            for watcher in watchers:
                watcher.kill()
        print(top(out, args.top, args.seconds))
        if args.out:
            print(f"collapsed stacks in {args.out}")


if __name__ == "__main__":
    main()
