"""Starting the real server as a separate process, for end-to-end and browser tests."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ErrorStatus(Exception):
    """An answer with a 4xx or 5xx status, its body already read."""

    def __init__(self, code: int, body: bytes) -> None:
        super().__init__(f"HTTP {code}: {body[:200]!r}")
        self.code = code
        self.body = body


class ServerProcess:
    """`python -m tornado_progress` on 127.0.0.1 with its own snapshot folder."""

    def __init__(self, snapshot_dir: Path, port: int | None = None, *extra: str,
                 open_files: int | None = None) -> None:
        self.snapshot_dir = snapshot_dir
        self.port = port or free_port()
        self.extra = extra
        self.open_files = open_files  # soft and hard limit of the server's descriptors
        self.process: subprocess.Popen[str] | None = None
        self.log_path = snapshot_dir.parent / f"server-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tornado_progress", "--host", "127.0.0.1",
                 "--port", str(self.port), "--snapshot-dir", str(self.snapshot_dir),
                 *self.extra],
                stdout=log, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=self._limit)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start: {self.log()}")
            try:
                self.get("health")
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not answer within {STARTUP_TIMEOUT_S} s: {self.log()}")

    def _limit(self) -> None:
        if self.open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def get(self, endpoint: str, timeout: float = 10.0) -> Any:
        """GET /progress/<endpoint> and decode its JSON; `ErrorStatus` for an error status."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/progress/{endpoint}",
                                        timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                raise ErrorStatus(error.code, error.read()) from None

    def signal(self, signum: int) -> int:
        """Sends `signum` and waits for the exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(timeout=STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STARTUP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_server(snapshot_dir: Path, *extra: str, port: int | None = None,
                   open_files: int | None = None) -> Iterator[ServerProcess]:
    server = ServerProcess(snapshot_dir, port, *extra, open_files=open_files).start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["ErrorStatus", "ServerProcess", "free_port", "running_server"]
