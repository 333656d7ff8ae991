"""Starting and stopping the systems under test, each its own process group on 127.0.0.1.

Every process is started in a new session, so that stopping it (SIGTERM, then SIGKILL after a
grace period) takes its children too; `Fleet` stops all it started even when the run fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.serverproc import free_port

ROOT = Path(__file__).resolve().parent.parent
PROGRESSISTA = ROOT / "bench" / ".venv-progressista" / "bin" / "progressista"
PUSHGATEWAY = Path("/usr/bin/prometheus-pushgateway")
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


@dataclass
class System:
    """A running server: its name, port, process and (for ours) the probe side channel."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    probe_port: int | None = None
    started_at: float = field(default_factory=time.perf_counter)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after the grace period."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_GRACE_S)
        except ProcessLookupError:
            pass

    def control(self, action: str, query: str = "") -> Any:
        """POST to the probed server's side channel (`probe/start`, `timing/stop`, ...)."""
        assert self.probe_port is not None, f"{self.name} has no side channel"
        url = f"http://127.0.0.1:{self.probe_port}/{action}{'?' + query if query else ''}"
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"),
                                    timeout=10) as response:
            return json.loads(response.read())

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def launch(name: str, command: list[str], port: int, logs: Path, ready_url: str,
           probe_port: int | None = None, timeout: float = START_TIMEOUT_S) -> System:
    """Starts `command` and waits until `ready_url` answers 200 (or the process dies)."""
    log_path = logs / f"{name}-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                   start_new_session=True, stdin=subprocess.DEVNULL)
    system = System(name, port, process, log_path, probe_port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start: {log_path.read_text()[-2000:]}")
        if http_status(ready_url, timeout=0.5) == 200:
            return system
        time.sleep(0.02)
    system.stop()
    raise RuntimeError(f"{name} did not answer {ready_url} within {timeout} s")


class Fleet:
    """Starts the systems and stops every one of them on exit, whatever happened."""

    def __init__(self, logs: Path, ours_extra: tuple[str, ...] = ()) -> None:
        self.logs = logs
        self.ours_extra = ours_extra  # options added to every start of ours (`--ours-arg`)
        self.systems: list[System] = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        while self.systems:
            self.systems.pop().stop()

    def add(self, system: System) -> System:
        self.systems.append(system)
        return system

    def stop(self, system: System) -> None:
        system.stop()
        if system in self.systems:
            self.systems.remove(system)

    def ours(self, snapshot_dir: Path, *options: str, name: str = "ours") -> System:
        port, probe_port = free_port(), free_port()
        command = [sys.executable, "-m", "bench.probed_server", "--probe-port", str(probe_port),
                   "--host", "127.0.0.1", "--port", str(port), "--snapshot-dir",
                   str(snapshot_dir), "--log-level", "warning", *options, *self.ours_extra]
        return self.add(launch(name, command, port, self.logs,
                               f"http://127.0.0.1:{port}/progress/health", probe_port))

    def product(self, snapshot_dir: Path, name: str = "product") -> System:
        """The plain `python -m tornado_progress`, no wrapper: for memory and start-up."""
        port = free_port()
        command = [sys.executable, "-m", "tornado_progress", "--host", "127.0.0.1", "--port",
                   str(port), "--snapshot-dir", str(snapshot_dir), "--log-level", "warning",
                   "--snapshot-interval", "3600"]
        return self.add(launch(name, command, port, self.logs,
                               f"http://127.0.0.1:{port}/progress/health"))

    def bare(self) -> System:
        """The bare-RequestHandler floor: a Tornado Application answering "OK"."""
        port = free_port()
        command = [sys.executable, "-m", "bench.bare_server", "--port", str(port)]
        return self.add(launch("bare", command, port, self.logs,
                               f"http://127.0.0.1:{port}/progress/update"))

    def raw(self) -> System:
        """The raw-delegate floor: an HTTPServerConnectionDelegate answering "OK"."""
        port = free_port()
        command = [sys.executable, "-m", "bench.bare_server", "--port", str(port), "--raw"]
        return self.add(launch("raw", command, port, self.logs,
                               f"http://127.0.0.1:{port}/progress/update"))

    def progressista(self) -> System:
        port = free_port()
        command = [str(PROGRESSISTA), "serve", "--host", "127.0.0.1", "--port", str(port)]
        return self.add(launch("progressista", command, port, self.logs,
                               f"http://127.0.0.1:{port}/health"))

    def pushgateway(self) -> System:
        port = free_port()
        # Debian sets a persistence file by default; an empty one keeps it in memory only.
        command = [str(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}",
                   "--persistence.file="]
        return self.add(launch("pushgateway", command, port, self.logs,
                               f"http://127.0.0.1:{port}/-/ready"))
