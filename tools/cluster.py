"""`make cluster`: N tornado_progress backends behind one nginx, on this machine, in the
foreground.

Each backend is an ordinary `python -m tornado_progress` on a free local port with its own
snapshot folder; nginx routes every request that names a job to the backend its key hashes to
(see tools/nginx_config.py). Everything lives in one folder (default `cluster/`): the
generated nginx.conf, nginx's pid, logs and temporary files, each backend's log and
snapshots, and `cluster.json`, which says which backend is where. A backend keeps its port
from one run to the next while the port is free, because the hash ring is built from the
backends' addresses: a changed address moves about 1/N of the jobs.

A backend that dies is started again after a second, from its snapshots (as systemd's
Restart=on-failure would). SIGTERM or Ctrl-C stops nginx and every backend, each backend
writing its final snapshot.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from tools import nginx_config

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
RESTART_DELAY_S = 1.0
CHECK_INTERVAL_S = 0.1


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Backend:
    number: int
    host: str
    port: int
    folder: Path
    extra: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    died_at: float | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "backend.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tornado_progress", "--host", self.host,
                 "--port", str(self.port), "--snapshot-dir", str(self.folder / "snapshots"),
                 *self.extra],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.died_at = None

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.address}/progress/health", timeout=1):
                return True
        except OSError:
            return False


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        self.folder: Path = args.folder.resolve()
        self.host: str = args.host
        self.port: int = args.port
        self.args = args
        # Set by the signal handler: a plain flag, since a handler that took a lock could
        # deadlock with the loop it interrupts.
        self.stopping = False
        self.nginx: subprocess.Popen[bytes] | None = None
        self.backends = [Backend(number, self.host, port, self.folder / f"backend-{number}",
                                 list(args.backend_args))
                         for number, port in enumerate(self.choose_ports(), start=1)]

    def choose_ports(self) -> list[int]:
        """The ports of the last run while they are free, new free ones for the rest."""
        try:
            state = json.loads((self.folder / "cluster.json").read_text())
            last = [int(backend["port"]) for backend in state["backends"]]
        except (OSError, ValueError, KeyError, TypeError):
            last = []
        ports: list[int] = []
        for number in range(self.args.backends):
            port = last[number] if number < len(last) else 0
            if not port or not port_is_free(self.host, port) or port in ports:
                if port:
                    print(f"backend {number + 1}: port {port} is taken, so about "
                          f"1/{self.args.backends} of the jobs move to other backends")
                port = free_port(self.host)
            ports.append(port)
        return ports

    def write_state(self) -> None:
        state = {"url": f"http://{self.host}:{self.port}/progress/",
                 "nginx_pid": self.nginx.pid if self.nginx else None,
                 "backends": [{"number": backend.number, "address": backend.address,
                               "port": backend.port, "folder": str(backend.folder),
                               "pid": backend.process.pid if backend.process else None,
                               "restarts": backend.restarts}
                              for backend in self.backends]}
        temporary = self.folder / "cluster.json.tmp"
        temporary.write_text(json.dumps(state, indent=2) + "\n")
        temporary.replace(self.folder / "cluster.json")

    def start_nginx(self) -> None:
        module = self.args.njs_module or nginx_config.njs_module()
        if module is None:
            raise SystemExit("nginx's njs module is missing: run make setup (Debian package "
                             "libnginx-mod-http-js) or pass --njs-module PATH")
        site = nginx_config.Site(backends=[backend.address for backend in self.backends],
                                 listen=f"{self.host}:{self.port}",
                                 njs_script=str(nginx_config.NJS_SCRIPT))
        (self.folder / "temp").mkdir(parents=True, exist_ok=True)
        (self.folder / "tornado-progress.conf").write_text(nginx_config.site(site))
        conf = self.folder / "nginx.conf"
        conf.write_text(nginx_config.main_config(self.folder, module, self.args.nginx_workers,
                                                 self.args.access_log))
        nginx = shutil.which(self.args.nginx) or self.args.nginx
        command = [nginx, "-p", str(self.folder), "-c", str(conf),
                   "-e", str(self.folder / "nginx-error.log")]
        checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise SystemExit(f"nginx refused the configuration: {checked.stderr.strip()}")
        self.nginx = subprocess.Popen(command, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for backend in self.backends:
            while not backend.answers():
                if backend.process is not None and backend.process.poll() is not None:
                    raise SystemExit(f"backend {backend.number} exited at start; see "
                                     f"{backend.folder / 'backend.log'}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"backend {backend.number} did not answer within "
                                     f"{STARTUP_TIMEOUT_S:.0f} s")
                time.sleep(0.05)

    def run(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        for backend in self.backends:
            backend.start()
        try:
            self.wait_ready()
            self.start_nginx()
            self.write_state()
            print(f"{len(self.backends)} backends behind nginx at "
                  f"http://{self.host}:{self.port}/progress/ (backends: "
                  f"{', '.join(b.address for b in self.backends)}; each one's health: "
                  f"/progress/backends). Files in {self.folder}. Ctrl-C stops them all.",
                  flush=True)
            return self.supervise()
        finally:
            self.stop()

    def supervise(self) -> int:
        while True:
            time.sleep(CHECK_INTERVAL_S)
            if self.stopping:
                return 0
            if self.nginx is not None and self.nginx.poll() is not None:
                print(f"nginx exited with {self.nginx.returncode}; stopping the backends "
                      f"(see {self.folder / 'nginx-error.log'})", flush=True)
                return 1
            for backend in self.backends:
                self.restart_if_dead(backend)

    def restart_if_dead(self, backend: Backend) -> None:
        if backend.process is None or backend.process.poll() is None:
            return
        now = time.monotonic()
        if backend.died_at is None:
            backend.died_at = now
            print(f"backend {backend.number} ({backend.address}) exited with "
                  f"{backend.process.returncode}; starting it again from its snapshots",
                  flush=True)
        elif now - backend.died_at >= RESTART_DELAY_S:
            backend.restarts += 1
            backend.start()
            self.write_state()

    def stop(self) -> None:
        """Everyone gets the signal first, then the waits: the backends' final snapshots are
        written side by side."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: finishes answers in flight
        running = [b.process for b in self.backends
                   if b.process is not None and b.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in [*running, *([self.nginx] if self.nginx else [])]:
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make cluster", description="N tornado_progress backends behind one nginx.",
        epilog="Arguments after -- go to every backend, e.g. -- --snapshot-interval 1")
    parser.add_argument("--backends", type=int, default=2, help="number of backends")
    parser.add_argument("--host", default="127.0.0.1", help="address nginx listens on")
    parser.add_argument("--port", type=int, default=8000, help="port nginx listens on")
    parser.add_argument("--folder", type=Path, default=Path("cluster"),
                        help="folder of the configuration, logs, pids and snapshots")
    parser.add_argument("--nginx", default="nginx", help="the nginx program")
    parser.add_argument("--njs-module", help="the njs module's .so (found when not given)")
    parser.add_argument("--nginx-workers", type=int, default=1,
                        help="nginx worker processes")
    parser.add_argument("--access-log", action="store_true", help="nginx writes an access log")
    parser.add_argument("backend_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.backends < 1:
        parser.error("--backends must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    cluster = Cluster(parse_args(argv))

    def stop(signum: int, frame: FrameType | None) -> None:
        cluster.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return cluster.run()


if __name__ == "__main__":
    sys.exit(main())
