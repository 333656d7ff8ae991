"""The benchmark's wrapper around the real server still starts and answers: it reaches into
`tornado_progress.__main__`, so a change there can break `make bench` without any other test
noticing. No timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serverproc import free_port

pytestmark = pytest.mark.e2e


def post(url: str) -> object:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""),
                                timeout=10) as response:
        return json.loads(response.read())


def test_probed_server_serves_and_measures(tmp_path: Path) -> None:
    port, probe_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.probed_server", "--probe-port", str(probe_port),
         "--port", str(port), "--snapshot-dir", str(tmp_path / "snapshots")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}/progress"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.05)
        post(f"http://127.0.0.1:{probe_port}/timing/start")
        post(f"http://127.0.0.1:{probe_port}/probe/start")
        urllib.request.urlopen(f"{base}/update?jobid=j&workid=w&current=1&total=2").close()
        assert isinstance(post(f"http://127.0.0.1:{probe_port}/probe/stop"), dict)
        timings = post(f"http://127.0.0.1:{probe_port}/timing/stop")
        assert isinstance(timings, list) and len(timings) == 1
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stdout:
            server.stdout.close()
