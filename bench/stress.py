"""Stress tests of tornado_progress: crashes, a churn soak, connection attacks, snapshot folders
and memory attacks, each against the real server process, with one table of figures and goals.

Run: `make stress`, or `.venv/bin/python -m bench.stress [--quick] [--only crash,soak,...]`

Every part is its own program (`python -m bench.stress_<part>`, see each one's --help) that
prints one JSON line per measurement on stdout; this program runs them one after another as
subprocesses, each bounded in time, and turns their lines into a markdown table on stdout
(progress goes to stderr) and the raw lines into bench/results-stress.json. A part that is
missing, fails or prints nothing becomes a MISSING row instead of stopping the others.
`--quick` runs a small version of every part (a few minutes in all); the default is full size.
The exit status is 1 when any goal is missed or any part is missing.

The helpers the parts share (a keep-alive HTTP/1.1 client on asyncio streams, the server's RSS,
the descriptor limit, JSON output) live here too, above the orchestration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bench.report import machine, percentile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results-stress.json"

# ---------------------------------------------------------------------------------------------
# Shared by the parts
# ---------------------------------------------------------------------------------------------


def say(message: str) -> None:
    """Progress for the person watching: stderr, so that stdout stays JSON lines."""
    print(message, file=sys.stderr, flush=True)


def emit(record: Mapping[str, Any]) -> None:
    """One measurement as one JSON line on stdout: what the orchestrator collects."""
    print(json.dumps(record, default=str), flush=True)


def exit_on_sigterm() -> None:
    """A SIGTERM (the orchestrator's time bound, make interrupted) unwinds like an exception, so
    that every `finally` stops the servers this process started."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def raise_open_files() -> int:
    """Raises this process's soft limit of open files to its hard limit; returns the new soft
    limit (the attacks hold more connections than the usual 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)


def rss_mb(pid: int) -> float | None:
    """The resident set of process `pid` in MB (VmRSS of /proc/<pid>/status); None if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return None


def latency_figures(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max of `seconds`, in milliseconds (None when there are none)."""
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000.0, 2)
    return {"p50_ms": ms(percentile(seconds, 0.50)), "p99_ms": ms(percentile(seconds, 0.99)),
            "max_ms": ms(max(seconds) if seconds else None)}


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 answer: status line, headers, and a body framed by Content-Length, chunked
    encoding, or the end of the connection."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in head[1:] if line)}
    if status in (204, 304) or 100 <= status < 200:
        return Answer(status, headers, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return Answer(status, headers, bytes(body[:-2]))
            del body[-2:]
    if "content-length" in headers:
        return Answer(status, headers, await reader.readexactly(int(headers["content-length"])))
    return Answer(status, headers, await reader.read())


class Http:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:`port`, opened on first use and again
    after any failure; every exchange is bounded by `timeout` seconds."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, target: str, method: str = "GET", body: bytes = b"") -> Answer:
        """`target` is the path with its query; a POST body is sent form-encoded. A connection
        the server closed while it was idle is reopened once; other failures are raised."""
        reused = self._streams is not None
        try:
            return await asyncio.wait_for(self._exchange(target, method, body), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.close()
            if not reused:
                raise
        except BaseException:
            self.close()
            raise
        try:
            return await asyncio.wait_for(self._exchange(target, method, body), self.timeout)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, target: str, method: str, body: bytes) -> Answer:
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._streams
        extra = ("Content-Type: application/x-www-form-urlencoded\r\n"
                 f"Content-Length: {len(body)}\r\n") if method == "POST" else ""
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{extra}\r\n"
                     .encode("latin-1") + body)
        await writer.drain()
        answer = await read_answer(reader)
        if answer.headers.get("connection", "").lower() == "close":
            self.close()
        return answer

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> Answer | None:
    """Sends `data` on a new connection and reads one answer, all within `timeout` seconds;
    None when the server closed the connection without one or the time ran out."""
    streams: list[asyncio.StreamWriter] = []

    async def exchange() -> Answer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        streams.append(writer)
        writer.write(data)
        await writer.drain()
        return await read_answer(reader)

    try:
        return await asyncio.wait_for(exchange(), timeout)
    except (OSError, ValueError, IndexError, asyncio.TimeoutError,
            asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    finally:
        for writer in streams:
            writer.close()


# ---------------------------------------------------------------------------------------------
# The orchestrator
# ---------------------------------------------------------------------------------------------


@dataclass
class StressRow:
    part: str
    what: str
    figure: str
    goal: str
    result: str  # "pass", "FAIL", "info", "MISSING"


def judged(met: bool | None) -> str:
    return "info" if met is None else ("pass" if met else "FAIL")


def number(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def at_most(value: float | None, goal: float) -> str:
    return judged(value is not None and value <= goal)


def below(value: float | None, goal: float) -> str:
    return judged(value is not None and value < goal)


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def crash_rows(records: list[dict[str, Any]]) -> list[StressRow]:
    rows = []
    for r in records:
        lost, starts = number(r, "lost_beyond_interval"), number(r, "starts")
        bad = (number(r, "failed_starts") or 0) + (number(r, "hung_starts") or 0)
        slowest = fmt(number(r, "start_s_max"), " s", 2)
        rows += [
            StressRow("crash", "acknowledged updates lost beyond one snapshot interval",
                      f"{fmt(lost)} of {fmt(number(r, 'checked'))} checked", "= 0",
                      at_most(lost, 0)),
            StressRow("crash", "server starts that failed or hung",
                      f"{fmt(bad)} of {fmt(starts)} (slowest {slowest})", "= 0",
                      at_most(bad, 0)),
            StressRow("crash", "kill -9 cycles done under load",
                      f"{fmt(number(r, 'kills'))} of {fmt(number(r, 'cycles'))}, "
                      f"{fmt(number(r, 'acknowledged'))} updates acknowledged",
                      "all", judged(r.get("kills") == r.get("cycles"))),
            StressRow("crash", "acknowledged updates lost within the last interval",
                      fmt(number(r, "lost_within_interval")), "", "info"),
        ]
    return rows


def soak_rows(records: list[dict[str, Any]]) -> list[StressRow]:
    rows = []
    for r in records:
        fives, growth = number(r, "five_xx"), number(r, "growth_pct")
        series = ", ".join(f"{mb:.0f}" for _, mb in r.get("rss_series", []))
        rows += [
            StressRow("soak", f"5xx answers in {fmt(number(r, 'minutes'), ' min', 1)} of churn",
                      f"{fmt(fives)} of {fmt(number(r, 'requests'))} requests "
                      f"({fmt(number(r, 'rate'), '/s')})", "= 0", at_most(fives, 0)),
            StressRow("soak", "server RSS growth over the last half",
                      f"{fmt(number(r, 'growth_mb'), ' MB', 1)} ({fmt(growth, ' %', 1)})",
                      "< 10 %", below(growth, 10.0)),
            StressRow("soak", "server RSS series (MB)", series or "-", "", "info"),
            StressRow("soak", "requests without an answer (reset, timeout)",
                      fmt(number(r, "errors")), "", "info"),
        ]
    return rows


def connection_rows(records: list[dict[str, Any]]) -> list[StressRow]:
    rows = []
    for r in records:
        attack, p99, log_bytes = r.get("attack", "?"), number(r, "p99_ms"), number(r, "log_bytes")
        rows += [
            StressRow("connections", f"{attack}: update latency p99",
                      f"{fmt(p99, ' ms')} (p50 {fmt(number(r, 'p50_ms'), ' ms', 1)}, max "
                      f"{fmt(number(r, 'max_ms'), ' ms')}, {fmt(number(r, 'updates'))} "
                      f"updates, {fmt(number(r, 'failed'))} failed)", "< 2000 ms",
                      below(p99, 2000.0) if r.get("healthy_after") else "FAIL"),
            StressRow("connections", f"{attack}: server log growth",
                      f"{fmt(log_bytes, ' B')} ({fmt(number(r, 'connects'))} attacking "
                      "connections)", "< 1 MB", below(log_bytes, 1_000_000)),
        ]
    return rows


def snapshot_rows(records: list[dict[str, Any]]) -> list[StressRow]:
    rows = []
    for r in records:
        folders = fmt(number(r, "folders"))
        rows += [StressRow("snapshots", f"{what} ({folders} damaged folders)",
                           fmt(number(r, key)), "= 0", at_most(number(r, key), 0))
                 for key, what in (("failed_starts", "starts that failed"),
                                   ("hung_starts", "starts that hung"),
                                   ("wrong_state", "starts with the wrong state"))]
        rows.append(StressRow("snapshots", "time for all folders",
                              fmt(number(r, "seconds"), " s", 1), "", "info"))
    return rows


def memory_rows(records: list[dict[str, Any]]) -> list[StressRow]:
    return [StressRow("memory", f"{r.get('attack', '?')}: peak server RSS",
                      f"{fmt(number(r, 'peak_rss_mb'), ' MB')} (after "
                      f"{fmt(number(r, 'rss_after_mb'), ' MB')}; update p50 "
                      f"{fmt(number(r, 'update_p50_ms'), ' ms', 1)}, p99 "
                      f"{fmt(number(r, 'update_p99_ms'), ' ms', 1)})", "< 400 MB",
                      below(number(r, "peak_rss_mb"), 400.0)) for r in records]


class Part(NamedTuple):
    name: str
    module: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout_s: tuple[float, float]  # full, quick
    rows: Callable[[list[dict[str, Any]]], list[StressRow]]


PARTS = (
    Part("crash", "bench.stress_crash", (), ("--quick",), (3600, 300), crash_rows),
    Part("soak", "bench.stress_soak", (), ("--quick",), (1200, 300), soak_rows),
    Part("connections", "bench.stress_connections", (), ("--quick",), (900, 300),
         connection_rows),
    Part("snapshots", "bench.stress_snapshots", ("--folders", "1000"), ("--folders", "30"),
         (3600, 600), snapshot_rows),
    Part("memory", "bench.stress_memory", (), (), (3600, 900), memory_rows),
)


def run_part(part: Part, quick: bool) -> dict[str, Any]:
    """Runs one part as a subprocess within its time bound; its JSON lines and what went wrong."""
    if importlib.util.find_spec(part.module) is None:
        return {"records": [], "problem": f"{part.module} does not exist", "seconds": 0.0}
    command = [sys.executable, "-m", part.module, *(part.quick if quick else part.full)]
    timeout = part.timeout_s[1 if quick else 0]
    say(f"{part.name}: {' '.join(command[1:])} (at most {timeout:.0f} s) ...")
    began = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    problem = ""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        problem = f"stopped after {timeout:.0f} s"
        output = stop_part(process)
    finally:
        if process.poll() is None:
            stop_part(process)
    records = []
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            if line.startswith("{"):
                records.append(json.loads(line))
    if process.returncode and not problem:
        problem = f"exit status {process.returncode}"
    seconds = round(time.monotonic() - began, 1)
    say(f"  {part.name}: {len(records)} line(s) in {seconds:.0f} s {problem}")
    return {"command": command[1:], "records": records, "problem": problem, "seconds": seconds}


def stop_part(process: subprocess.Popen[str]) -> str:
    """SIGTERM (the part stops its servers), then SIGKILL; returns what it printed."""
    process.terminate()
    try:
        return process.communicate(timeout=60)[0] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0] or ""


def markdown(rows: Sequence[StressRow]) -> str:
    lines = ["| part | measurement | figure | goal | result |", "|---|---|---|---|---|"]
    lines += [f"| {r.part} | {r.what} | {r.figure} | {r.goal} | {r.result} |" for r in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a small version of every part (a few minutes in all)")
    parser.add_argument("--only", default=",".join(part.name for part in PARTS),
                        help="comma-separated parts to run (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    wanted = {name.strip() for name in args.only.split(",")}
    began = time.monotonic()
    rows: list[StressRow] = []
    raw: dict[str, Any] = {}
    for part in PARTS:
        if part.name not in wanted:
            continue
        raw[part.name] = outcome = run_part(part, args.quick)
        part_rows = part.rows(outcome["records"])
        if outcome["problem"] or not part_rows:
            part_rows.append(StressRow(part.name, "part ran to the end",
                                       outcome["problem"] or "no figures printed", "yes",
                                       "MISSING"))
        rows += part_rows
    command = "python -m bench.stress" + "".join(f" {arg}" for arg in (argv or sys.argv[1:]))
    date = time.strftime("%Y-%m-%d %H:%M %Z")
    host = machine()
    print(f"Stress results, {date}: `{command}`\n\n{host['cores']} cores, "
          f"{host['memory_gib']} GiB, {host['cpu'] or 'unknown CPU'}, Python {host['python']}, "
          f"Linux {host['kernel']}; {time.monotonic() - began:.0f} s in all\n")
    print(markdown(rows))
    args.out.write_text(json.dumps(
        {"date": date, "command": command, "quick": args.quick, "machine": host,
         "wall_s": round(time.monotonic() - began, 1), "rows": [asdict(row) for row in rows],
         "raw": raw}, indent=1, default=str) + "\n")
    print(f"\nRaw figures in {args.out}")
    return 1 if any(row.result in ("FAIL", "MISSING") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
