"""The files of deploy/: nginx accepts the site files, they are what tools/nginx_config.py
writes, and the systemd units start the server with options it knows."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import nginx_config
from tornado_progress.__main__ import parse_args

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALLED_PROGRAM = "/opt/tornado-progress/bin/tornado-progress"


def test_the_nginx_files_are_what_the_generator_writes() -> None:
    assert nginx_config.main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(nginx_config.DEPLOY_FILES))
def test_nginx_accepts_each_site_file(name: str, tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is missing: `make test` installs it")
    site = (DEPLOY / "nginx" / name).read_text()
    site = site.replace(nginx_config.INSTALLED_NJS_SCRIPT, str(nginx_config.NJS_SCRIPT))
    site = site.replace("listen 80;", "listen 127.0.0.1:1;")  # parsed, never bound by -t
    (tmp_path / "tornado-progress.conf").write_text(site)
    (tmp_path / "temp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config.main_config(tmp_path, nginx_config.njs_module(), 1, False))
    checked = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf),
                              "-e", str(tmp_path / "error.log")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def exec_start(unit: Path) -> list[str]:
    lines = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1
    return shlex.split(lines[0].removeprefix("ExecStart="))


@pytest.mark.parametrize("unit", UNITS, ids=[unit.name for unit in UNITS])
def test_each_unit_starts_the_server_with_options_it_knows(unit: Path) -> None:
    command = exec_start(unit)
    assert command[0] == INSTALLED_PROGRAM
    options = [word.replace("%i", "8001") for word in command[1:] if word != "$OPTIONS"]
    args = parse_args(options)
    assert args.port in (8000, 8001)
    assert str(args.snapshot_dir).startswith("/var/lib/tornado-progress")


def test_the_template_unit_gives_each_instance_its_own_port_and_snapshot_folder() -> None:
    text = (DEPLOY / "systemd" / "tornado-progress@.service").read_text()
    assert "--port %i" in text and "--snapshot-dir /var/lib/tornado-progress/%i" in text
    assert "StateDirectory=tornado-progress/%i" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=[unit.name for unit in UNITS])
def test_systemd_finds_nothing_wrong_in_each_unit(unit: Path, tmp_path: Path) -> None:
    program = Path(sys.executable).parent / "tornado-progress"
    name = unit.name.replace("@.", "@8001.")
    (tmp_path / name).write_text(unit.read_text().replace(INSTALLED_PROGRAM, str(program)))
    checked = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)],
                             capture_output=True, text=True)
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
