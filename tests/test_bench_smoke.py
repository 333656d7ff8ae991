"""The benchmark's wrapper around the real server still starts and answers: it reaches into
`tornado_progress.__main__`, so a change there can break `make bench` without any other test
noticing; and scenario 8 (nginx with 1, 2 and 3 backends) runs one short round and stops every
process it started. No timing is asserted here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench import scenarios_scale
from bench.scenarios_load import Bench
from bench.systems import Fleet
from tests.clusterproc import alive
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


def test_scale_out_scenario_runs_one_round_and_stops_everything(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is missing: `make bench-setup` installs it")
    with Fleet(tmp_path) as fleet:  # wrk runs whole seconds: 1 round of 1 s
        rows, raw = scenarios_scale.scale_rounds(Bench(fleet, tmp_path, 1, 1.0))
    assert {row.scenario for row in rows} == {8}
    assert all(row.value is not None and row.value > 0 for row in rows), rows
    assert all(len(runs) == 1 and runs[0]["errors"] == 0 for runs in raw["wrk"].values())
    assert raw["jobs_per_backend"]["nginx+1"] == [scenarios_scale.JOBS]
    assert all(jobs > 0 for jobs in raw["jobs_per_backend"]["nginx+3"])
    states = [json.loads(path.read_text()) for path in tmp_path.glob("scale-*/cluster.json")]
    assert len(states) == 5
    pids = [pid for state in states
            for pid in [state["nginx_pid"], *(backend["pid"] for backend in state["backends"])]]
    assert not [pid for pid in pids if alive(pid)]
