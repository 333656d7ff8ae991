"""A wheel, installed into a fresh virtualenv away from the checkout, serves every page and
static file (issue 9: a non-editable install once answered 500 for the show page and 404 for
static/)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.serverproc import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


def run(*command: str | Path, cwd: Path) -> str:
    return subprocess.run([str(part) for part in command], cwd=cwd, check=True,
                          capture_output=True, text=True, timeout=300).stdout


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_a_wheel_in_a_fresh_virtualenv_serves_pages_and_static_files(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "-w", wheels, ROOT, cwd=tmp_path)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=tmp_path).strip())
    # The dependencies (tornado, pycairo, msgpack) come from the project's environment, so
    # that the test needs no network and no compiler; the package itself only from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("tornado_progress-*.whl"))
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel,
        cwd=tmp_path)
    where = run(python, "-c", "import tornado_progress; print(tornado_progress.__file__)",
                cwd=tmp_path)
    assert where.startswith(str(venv))
    client = run(python, "-c", "import tornado_progress.client as c; print(c.__file__)",
                 cwd=tmp_path)
    assert client.startswith(str(venv))  # the client ships in the wheel too
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([venv / "bin" / "tornado-progress", "--port", str(port),
                               "--snapshot-dir", tmp_path / "snapshots"],
                              cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": ""})
    base = f"http://127.0.0.1:{port}/progress"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                fetch(f"{base}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        assert fetch(f"{base}/update?jobid=j&workid=w&current=1&total=2")[0] == 200
        status, page = fetch(f"{base}/show?jobid=j")
        assert status == 200 and b"<html" in page
        assert fetch(f"{base}/show?jobid=nothing")[0] == 404
        for name in ("show.js", "show-rows.js", "show-format.js", "progress.css",
                     "favicon.svg"):
            assert fetch(f"{base}/static/{name}")[0] == 200, name
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
