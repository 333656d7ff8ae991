"""The benchmark's wrapper around the real server still starts and answers: it reaches into
`tornado_progress.__main__`, so a change there can break `make bench` without any other test
noticing; scenario 8 (nginx with 1, 2 and 3 backends) runs one short round and stops every
process it started; and the scenarios 5 (render in process), 9 (batches), 10 to 12 (crowds of
viewers, waking parked polls) and the raw-delegate floor run once at tiny sizes. No timing is
asserted here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench import scenarios_batch, scenarios_crowd, scenarios_scale, scenarios_state
from bench.report import median_row, table
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


def test_raw_delegate_floor_answers_ok(tmp_path: Path) -> None:
    with Fleet(tmp_path) as fleet:
        raw = fleet.raw()
        with urllib.request.urlopen(raw.base + "/progress/update?jobid=j&workid=w") as answer:
            assert answer.status == 200 and answer.read() == b"OK"
    assert raw.process.poll() is not None


def test_deliveries_count_a_change_in_any_later_answer() -> None:
    changes = [(10, 100.0), (11, 100.1), (12, 100.2)]
    # Viewer one sees 11 (so 10 too) at 100.15 and 12 at 100.5; viewer two sees 10 only after
    # the horizon, and nothing later.
    answers = [[[100.15, 11], [100.5, 12]], [[111.0, 10]]]
    times, shares = scenarios_crowd.deliveries(changes, answers, horizon=10.0)
    assert [round(ms) for ms in times] == [150, 50, 300]
    assert shares == [1.0, 0.0]


def test_batch_scenario_runs_one_round(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is missing: `make bench-setup` installs it")
    with Fleet(tmp_path) as fleet:
        rows, raw = scenarios_batch.batch_rounds(Bench(fleet, tmp_path, 1, 1.0), batch=5)
    assert [row.scenario for row in rows] == [9] and rows[0].value and rows[0].value > 0
    assert all(run["errors"] == 0 for runs in raw["wrk"].values() for run in runs)


def test_crowd_scenario_delivers_every_change(tmp_path: Path) -> None:
    with Fleet(tmp_path) as fleet:
        rows, raw = scenarios_crowd.crowd_rounds(Bench(fleet, tmp_path, 1, 1.0), 10, 20,
                                                 seconds=1.0)
    assert {row.scenario for row in rows} == {10}
    run = raw["rounds"][0]
    assert run["changes"] == 10 and run["errors"] == 0 and run["update_errors"] == 0
    assert run["delivered_pct"] == 100.0 and run["delivery_p99_ms"] is not None


def test_wake_scenario_answers_every_parked_poll(tmp_path: Path) -> None:
    with Fleet(tmp_path) as fleet:
        rows, raw = scenarios_crowd.wake_rounds(Bench(fleet, tmp_path, 1, 1.0), polls=50)
    assert [row.scenario for row in rows] == [12, 12]
    run = raw["rounds"][0]
    assert run["answered"] == 50 and run["errors"] == 0 and run["wake_worst_ms"] is not None


def test_in_process_render_rows() -> None:
    rows, raw = scenarios_state.render_in_process(1)
    assert [row.scenario for row in rows] == [5, 5]
    assert all(row.value is not None and row.value > 0 for row in rows)
    assert len(raw["rounds"][0]["one_changed_ms"]) == scenarios_state.RENDER_RUNS


def test_table_shows_the_spread_over_rounds() -> None:
    row = median_row(1, "a ratio", [1.0, 2.0, 4.0], "x", ">=", 1.5)
    assert row.value == 2.0 and row.spread == (1.0, 4.0) and row.verdict == "PASS"
    assert "1.00-4.00" in table([row])


def test_render_and_poll_scenario_runs_one_round(tmp_path: Path) -> None:
    with Fleet(tmp_path) as fleet:
        rows, raw = scenarios_state.render_and_poll(Bench(fleet, tmp_path, 1, 1.0))
    assert {row.scenario for row in rows} == {5, 6}
    assert all(row.value is not None and row.value > 0 for row in rows), rows
    assert len(raw["render_100_http"][0]["server_one_changed_ms"]) == scenarios_state.RENDER_RUNS
