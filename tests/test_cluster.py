"""Several backends behind a real nginx (`make cluster`, deploy/nginx): every spelling of a job
reaches the one backend that holds it, pages and polls work through nginx, and a backend that
dies leaves the others answering and comes back from its snapshots."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.clusterproc import ClusterProcess, alive, call, get_json, running_cluster, typed
from tornado_progress.model import Store
from tornado_progress.snapshots import Snapshotter

pytestmark = pytest.mark.e2e

JOBS = 300
BACKENDS = 3
# One test client makes hundreds of jobs a minute.
BACKEND_ARGS = ("--new-jobs-per-minute", "100000")


def job_names(count: int) -> list[str]:
    """Ids with what splits jobs when routed naively: `:` and `/` that clients may or may not
    encode, spaces and `+` (the same character in an id), non-ASCII, `&=%?#`, emoji."""
    patterns: list[Callable[[int], str]] = [
        lambda i: f"u{i}:x",
        lambda i: f"run {i} a+b",
        lambda i: f"2026-11-30T04:09:17,{i:06d}+00:00",
        lambda i: f"ü{i}/é ∆",
        lambda i: f"odd&={i}%?#",
        lambda i: f"emoji🙂{i}",
    ]
    return [patterns[i % len(patterns)](i) for i in range(count)]


def lower_hex(encoded: str) -> str:
    return "%".join(part[:2].lower() + part[2:] if index else part
                   for index, part in enumerate(encoded.split("%")))


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), boundary


def send_every_spelling(connection: http.client.HTTPConnection, jobid: str) -> set[str]:
    """One update per spelling of `jobid`, each from its own worker; the workers' ids."""
    def update(workid: str) -> str:
        return f"workid={workid}&current=1&total=2"

    plus_for_space = jobid.replace(" ", "+")
    gets = {"typed": typed(jobid), "encoded": quote(jobid, safe=""),
            "lowerhex": lower_hex(quote(jobid, safe="")),
            "plus": quote(plus_for_space, safe="")}
    for workid, spelled in gets.items():
        status, answer = call(connection, "GET",
                              f"/progress/update?jobid={spelled}&{update(workid)}")
        assert status == 200, (jobid, workid, answer)
    form = urlencode({"jobid": jobid, "workid": "form", "current": 1, "total": 2})
    status, answer = call(connection, "POST", "/progress/update", form.encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, (jobid, "form", answer)
    body, boundary = multipart({"jobid": jobid, "workid": "multipart", "current": "1",
                                "total": "2"})
    status, answer = call(connection, "POST", "/progress/update", body,
                          {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, (jobid, "multipart", answer)
    return {*gets, "form", "multipart"}


def holders(ports: list[int], jobid: str) -> list[int]:
    """The backends (by port) that know `jobid`, asked directly."""
    found = []
    for port in ports:
        status, _ = get_json(f"http://127.0.0.1:{port}/progress/status?jobid={quote(jobid)}")
        assert status in (200, 404)
        if status == 200:
            found.append(port)
    return found


def require_nginx() -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is missing: `make test` installs it (Debian packages nginx and "
                    "libnginx-mod-http-js)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    require_nginx()
    folder = tmp_path_factory.mktemp("cluster")
    with running_cluster(folder, BACKENDS, *BACKEND_ARGS) as running:
        yield running


def test_every_spelling_of_a_job_reaches_the_one_backend_that_holds_it(
        cluster: ClusterProcess) -> None:
    with cluster.connect() as connection:
        expected = {jobid: send_every_spelling(connection, jobid) for jobid in job_names(JOBS)}
        ports = cluster.backend_ports()
        per_backend = dict.fromkeys(ports, 0)
        for jobid, workers in expected.items():
            status, job = call(connection, "GET", f"/progress/status?jobid={quote(jobid)}")
            assert status == 200, (jobid, job)
            assert {w["workid"] for w in job["workers"]} == workers, jobid
            found = holders(ports, jobid)
            assert len(found) == 1, (jobid, found)
            per_backend[found[0]] += 1
        # The hash spreads the jobs: every backend holds a fair share.
        assert min(per_backend.values()) >= JOBS // BACKENDS // 3, per_backend


def test_create_answers_urls_on_nginx_and_a_chosen_id_is_routed_home(
        cluster: ClusterProcess) -> None:
    with cluster.connect() as connection:
        status, named = call(connection, "GET", "/progress/create?jobid=u1%3Anamed&desc=x")
        assert status == 200
        host = f"127.0.0.1:{cluster.port}"
        assert named["show_url"] == f"http://{host}/progress/show?jobid=u1%3Anamed"
        for _ in range(10):  # ids chosen by the server land where their later requests go
            status, chosen = call(connection, "POST", "/progress/create", b"desc=chosen",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200
            jobid = chosen["jobid"]
            assert len(jobid) >= 16 and chosen["render_url"].startswith(f"http://{host}/")
            status, _ = call(connection, "GET",
                             f"/progress/update?jobid={jobid}&workid=w&current=1&total=2")
            assert status == 200
            status, job = call(connection, "GET", f"/progress/status?jobid={jobid}")
            assert (status, job["desc"], len(job["workers"])) == (200, "chosen", 1)
            assert len(holders(cluster.backend_ports(), jobid)) == 1


def test_show_page_and_long_poll_through_nginx_answer_within_a_second(
        cluster: ClusterProcess) -> None:
    with cluster.connect() as connection:
        jobid = "live view/1"
        status, created = call(connection, "GET", f"/progress/create?jobid={quote(jobid)}")
        status, page = call(connection, "GET", f"/progress/show?jobid={quote(jobid, safe='')}")
        assert status == 200 and "<html" in page.lower()
        answered: dict[str, Any] = {}

        def poll() -> None:
            path = f"/progress/poll?jobid={quote(jobid, safe='')}&since={created['version']}"
            with cluster.connect() as viewer:
                answered["status"], answered["job"] = call(viewer, "GET", path)
            answered["at"] = time.monotonic()

        viewer = threading.Thread(target=poll)
        viewer.start()
        time.sleep(0.3)  # let the poll park (a poll that arrives later answers at once anyway)
        updated_at = time.monotonic()
        call(connection, "GET",
             f"/progress/update?jobid={typed(jobid)}&workid=w&current=3&total=4")
        viewer.join(timeout=5)
        assert answered["status"] == 200
        assert answered["at"] - updated_at < 1.0
        assert [w["current"] for w in answered["job"]["workers"]] == [3]


def test_each_backends_health_through_nginx(cluster: ClusterProcess) -> None:
    status, health = get_json(f"{cluster.base_url}/progress/backends")
    assert status == 200 and health["status"] == "ok"
    addresses = [b["address"] for b in cluster.state()["backends"]]
    assert [b["address"] for b in health["backends"]] == addresses
    assert health["jobs"] == sum(b["jobs"] for b in health["backends"])
    for number in range(1, BACKENDS + 1):
        status, one = get_json(f"{cluster.base_url}/progress/backends/{number}/health")
        assert status == 200 and one["status"] == "ok" and "uptime_s" in one
    status, any_one = get_json(f"{cluster.base_url}/progress/health")
    assert status == 200 and "jobs" in any_one


def jobs_per_backend(cluster: ClusterProcess, count: int) -> dict[int, list[str]]:
    """Makes `count` jobs through nginx and groups them by the backend that holds them."""
    with cluster.connect() as connection:
        ports = cluster.backend_ports()
        grouped: dict[int, list[str]] = {port: [] for port in ports}
        for index in range(count):
            jobid = f"job {index}"
            status, _ = call(connection, "GET", f"/progress/update?jobid={quote(jobid)}"
                             "&workid=w&current=1&total=2")
            assert status == 200
            grouped[holders(ports, jobid)[0]].append(jobid)
        assert all(grouped.values()), grouped
        return grouped


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.02)


def test_a_killed_backend_leaves_the_others_answering_and_comes_back_from_its_snapshots(
        tmp_path: Path) -> None:
    require_nginx()
    with running_cluster(tmp_path, BACKENDS, *BACKEND_ARGS,
                         "--snapshot-interval", "0.2") as cluster:
        grouped = jobs_per_backend(cluster, 30)
        victim = cluster.state()["backends"][0]
        wait_for(lambda: get_json(f"http://{victim['address']}/progress/health")[1]
                 ["last_snapshot"] is not None, 5, "a snapshot of the victim's jobs")
        time.sleep(0.5)  # one more interval: the snapshot holds every job
        with cluster.connect() as connection:
            victims_job = quote(grouped[victim["port"]][0])

            def victims_job_status() -> int:
                return call(connection, "GET", f"/progress/status?jobid={victims_job}")[0]

            os.kill(victim["pid"], signal.SIGKILL)
            wait_for(lambda: victims_job_status() != 200, 5, "the killed backend's jobs go")
            status, answer = call(connection, "GET", f"/progress/status?jobid={victims_job}")
            assert status == 503 and "not answering" in answer["error"]
            for port, jobids in grouped.items():  # the others' jobs answer at once
                if port == victim["port"]:
                    continue
                for jobid in jobids:
                    started = time.monotonic()
                    status, job = call(connection, "GET",
                                       f"/progress/status?jobid={quote(jobid)}")
                    assert status == 200 and time.monotonic() - started < 0.5
            wait_for(lambda: victims_job_status() == 200, 20, "the backend restarted")
            assert cluster.state()["backends"][0]["restarts"] == 1
            for jobid in grouped[victim["port"]]:
                status, job = call(connection, "GET", f"/progress/status?jobid={quote(jobid)}")
                assert status == 200 and len(job["workers"]) == 1, jobid


def test_sigterm_stops_nginx_and_every_backend_each_writing_its_final_snapshot(
        tmp_path: Path) -> None:
    require_nginx()
    cluster = ClusterProcess(tmp_path, BACKENDS, *BACKEND_ARGS,
                             "--snapshot-interval", "3600").start()
    try:
        grouped = jobs_per_backend(cluster, 30)
        state = cluster.state()
        pids = cluster.pids()
    finally:
        code = cluster.stop()
    assert code == 0, cluster.log()
    assert not [pid for pid in pids if alive(pid)]
    for backend in state["backends"]:
        store = Store()
        assert Snapshotter(store, Path(backend["folder"]) / "snapshots").load() is not None
        assert sorted(job.jobid for job in store.jobs.values()) == sorted(
            grouped[backend["port"]])
