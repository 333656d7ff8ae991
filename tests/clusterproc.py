"""Starting `make cluster` (tools/cluster.py: N backends behind a real nginx) for the tests and
the benchmark, and talking to it with any spelling of a URL."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.serverproc import free_port

REPOSITORY = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 40.0


class RawConnection(http.client.HTTPConnection):
    """Sends the request line as given, non-ASCII bytes included, as curl does with a URL
    typed unencoded."""

    def _encode_request(self, request: str) -> bytes:
        return request.encode("utf-8")

    def _validate_path(self, url: str) -> None:
        pass


def call(connection: http.client.HTTPConnection, method: str, path: str,
         body: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, Any]:
    """One request on a kept-alive connection: the status and the decoded JSON (or text)."""
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    kind = response.getheader("Content-Type") or ""
    return response.status, json.loads(data) if "json" in kind else data.decode()


def typed(jobid: str) -> str:
    """A jobid as typed into curl without encoding: `+` for a space, raw `:` `/` `+` and
    non-ASCII, only what would break the URL escaped."""
    return "".join("+" if ch == " " else quote(ch, safe="") if ch in "&=#%?" else ch
                   for ch in jobid)


def get_json(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


class ClusterProcess:
    """`python -m tools.cluster` with its own folder, nginx on a free port."""

    def __init__(self, folder: Path, backends: int, *backend_args: str,
                 nginx_workers: int = 1) -> None:
        self.folder = folder
        self.backends = backends
        self.port = free_port()
        self.backend_args = backend_args
        self.nginx_workers = nginx_workers
        self.process: subprocess.Popen[str] | None = None
        self.log_path = folder / "cluster.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ClusterProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tools.cluster", "--backends", str(self.backends),
                 "--port", str(self.port), "--folder", str(self.folder),
                 "--nginx-workers", str(self.nginx_workers), "--", *self.backend_args],
                cwd=REPOSITORY, stdout=log, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # whatever did start goes with it
            raise
        return self

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cluster exited at start: {self.log()}")
            try:
                status, health = get_json(f"{self.base_url}/progress/backends", timeout=2)
                if status == 200 and health["status"] == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"cluster did not answer within {STARTUP_TIMEOUT_S} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.folder / "cluster.json").read_text())
        return state

    def backend_ports(self) -> list[int]:
        return [backend["port"] for backend in self.state()["backends"]]

    def pids(self) -> list[int]:
        state = self.state()
        return [pid for pid in [state["nginx_pid"], *(b["pid"] for b in state["backends"])]
                if pid]

    @contextmanager
    def connect(self) -> Iterator[RawConnection]:
        """A kept-alive connection to nginx."""
        connection = RawConnection("127.0.0.1", self.port, timeout=10)
        try:
            yield connection
        finally:
            connection.close()

    def stop(self) -> int | None:
        """SIGTERM and the exit code; whatever is left after the wait is killed."""
        if self.process is None:
            return None
        leftovers = self.pids() if (self.folder / "cluster.json").exists() else []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            for pid in leftovers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextmanager
def running_cluster(folder: Path, backends: int, *backend_args: str,
                    nginx_workers: int = 1) -> Iterator[ClusterProcess]:
    cluster = ClusterProcess(folder, backends, *backend_args,
                             nginx_workers=nginx_workers).start()
    try:
        yield cluster
    finally:
        cluster.stop()


__all__ = ["ClusterProcess", "RawConnection", "alive", "call", "get_json", "running_cluster",
           "typed"]
