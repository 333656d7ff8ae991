"""The nginx configuration of tornado_progress, written in one place.

`site()` is the http-level part (upstream, routing, proxy settings, locations) that both
`deploy/nginx/*.conf` (written by `python -m tools.nginx_config`, checked by a test) and
`make cluster` use; `main_config()` wraps it into a whole nginx.conf that runs unprivileged
from a folder of its own.

With several backends every request that names a job is hashed by the job's canonical key,
computed by `deploy/nginx/tornado_progress.js` exactly as the server reads a jobid, so one job
always reaches the one backend that holds it.
"""

from __future__ import annotations

import argparse
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nginx"
NJS_SCRIPT = DEPLOY / "tornado_progress.js"
# Where deploy/README.md tells an operator to put the script.
INSTALLED_NJS_SCRIPT = "/etc/nginx/njs/tornado_progress.js"
NJS_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/lib64/nginx/modules",
                   "/usr/local/lib/nginx/modules", "/etc/nginx/modules",
                   "/usr/share/nginx/modules")
NJS_MODULE = "ngx_http_js_module.so"
LONG_POLL_READ_TIMEOUT = "75s"  # a poll waits at most 60 s
BACKEND_KEEPALIVE_TIMEOUT = "50s"  # below the backends' --idle-timeout (60 s)
DOWN_SENTENCE = ("the backend that holds this job is not answering; "
                 "try again in a few seconds")


@dataclass(frozen=True)
class Site:
    backends: Sequence[str]  # host:port of each backend, in ring order
    listen: str  # what nginx's `listen` takes: "80", "127.0.0.1:8000"
    server_name: str = "_"
    njs_script: str = INSTALLED_NJS_SCRIPT
    max_body: str = "64k"  # the backends' --max-request-bytes
    routed: bool = True  # hash by job key (needs njs); False: one backend, plain proxy


def _upstream(site: Site) -> list[str]:
    lines = ["upstream tornado_progress {"]
    if site.routed:
        lines += [
            "    # A job lives in one backend: every request that names it goes there. While",
            "    # that backend is down its jobs answer 503 rather than start again elsewhere",
            "    # (max_fails=0 never takes a backend out of the ring).",
            "    hash $progress_key consistent;",
            *(f"    server {backend} max_fails=0;" for backend in site.backends),
        ]
    else:
        lines += [f"    server {backend};" for backend in site.backends]
    return [*lines,
            "    keepalive 64;",
            f"    keepalive_timeout {BACKEND_KEEPALIVE_TIMEOUT};  # below the backends' "
            "--idle-timeout",
            "    keepalive_requests 100000;",
            "}"]


def _proxy_settings(site: Site) -> list[str]:
    lines = [
        f"    client_max_body_size {site.max_body};  # the backends' --max-request-bytes",
        f"    client_body_buffer_size {site.max_body};  # bodies stay in memory",
        "",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";  # keep connections to the backends open',
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_set_header X-Forwarded-Host $progress_public_host;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    # Replaces any a client sent: per-client limits count by it.",
        "    proxy_set_header X-Real-Ip $remote_addr;",
    ]
    if site.routed:
        lines += [
            "    # A create without a jobid takes this id, the one it was routed by.",
            "    proxy_set_header X-Progress-New-Jobid $request_id;",
            "    proxy_next_upstream off;",
        ]
    return [*lines,
            f"    proxy_read_timeout {LONG_POLL_READ_TIMEOUT};  # a long poll waits up to 60 s",
            "",
            "    error_page 502 504 = @progress_backend_down;",
            "    error_page 413 = @progress_too_large;"]


def _locations(site: Site) -> list[str]:
    lines = [
        "    location /progress/ {",
        "        proxy_pass http://tornado_progress;",
        "    }",
        "    location = / {",
        "        proxy_pass http://tornado_progress;",
        "    }",
        "    location = /progress/poll {",
        "        proxy_pass http://tornado_progress;",
        "        proxy_buffering off;  # each answer leaves the moment it is written",
        "    }",
        "    location = /progress/text {",
        "        proxy_pass http://tornado_progress;",
        "        proxy_buffering off;  # text?follow=1 writes a frame at each change",
        "        proxy_read_timeout 660s;",
        "    }",
    ]
    if site.routed:
        names = " ".join(site.backends)
        lines += [
            "    # Every backend's health in one answer; each backend's own below.",
            "    location = /progress/backends {",
            f'        set $progress_backends "{names}";',
            "        js_content tornado_progress.backends;",
            "    }",
        ]
        for number, backend in enumerate(site.backends, start=1):
            lines += [f"    location = /progress/backends/{number}/health {{",
                      f"        proxy_pass http://{backend}/progress/health;",
                      "    }"]
    return [
        *lines,
        "    location @progress_backend_down {",
        "        default_type application/json;",
        '        add_header Retry-After 2 always;',
        f"        return 503 '{{\"error\": \"{DOWN_SENTENCE}\"}}\\n';",
        "    }",
        "    location @progress_too_large {",
        "        default_type application/json;",
        "        return 413 '{\"error\": \"the request body is larger than the limit of "
        f"{site.max_body}B\"}}\\n';",
        "    }",
    ]


def site(site: Site) -> str:
    """The http-level configuration: goes in conf.d/ or sites-enabled/."""
    header = []
    if site.routed:
        header += [f"js_import tornado_progress from {site.njs_script};",
                   "js_set $progress_key tornado_progress.key;", ""]
    lines = [
        *header,
        *_upstream(site),
        "",
        "# The host and port the client used, so that the URLs create answers point at nginx.",
        "map $http_host $progress_public_host {",
        '    ""      $host:$server_port;  # HTTP/1.0 without a Host header',
        "    default $http_host;",
        "}",
        "",
        "server {",
        f"    listen {site.listen};",
        f"    server_name {site.server_name};",
        "",
        *_proxy_settings(site),
        "",
        *_locations(site),
        "}",
    ]
    return "\n".join(lines) + "\n"


def njs_module() -> str | None:
    """The njs module's file on this machine, or None."""
    for folder in NJS_MODULE_DIRS:
        candidate = Path(folder) / NJS_MODULE
        if candidate.exists():
            return str(candidate)
    return None


def main_config(folder: Path, module: str | None, workers: int, access_log: bool) -> str:
    """A whole nginx.conf that keeps its pid, logs and temporary files in `folder`."""
    temp = folder / "temp"
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if open_files == resource.RLIM_INFINITY:
        open_files = 65536
    lines = [
        "# Written by tools/cluster.py at each start; edit tools/nginx_config.py instead.",
        "daemon off;",
        f"worker_processes {workers};",
        f"worker_rlimit_nofile {open_files};",
        f"pid {folder / 'nginx.pid'};",
        f"error_log {folder / 'nginx-error.log'} notice;",
    ]
    if module:
        lines.append(f"load_module {module};")
    lines += [
        "events {",
        "    worker_connections 16384;",
        "}",
        "http {",
        f"    access_log {folder / 'nginx-access.log' if access_log else 'off'};",
        "    default_type application/octet-stream;",
        *(f"    {kind}_temp_path {temp / kind};"
          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        f"    include {folder / 'tornado-progress.conf'};",
        "}",
    ]
    return "\n".join(lines) + "\n"


DEPLOY_FILES = {
    "tornado-progress.conf": Site(backends=["127.0.0.1:8000"], listen="80",
                                  server_name="progress.example.org", routed=False),
    "tornado-progress-cluster.conf": Site(
        backends=["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"], listen="80",
        server_name="progress.example.org"),
}


def deploy_file(name: str) -> str:
    """The text of deploy/nginx/<name>, as this module writes it."""
    what = ("one backend" if not DEPLOY_FILES[name].routed
            else "several backends, each job routed to one by its key")
    return (f"# tornado_progress behind nginx: {what}. See deploy/README.md.\n"
            "# Written by `python -m tools.nginx_config`; edit tools/nginx_config.py.\n"
            + site(DEPLOY_FILES[name]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write deploy/nginx/*.conf.")
    parser.add_argument("--check", action="store_true",
                        help="only say whether the files are up to date")
    args = parser.parse_args(argv)
    stale = [name for name in DEPLOY_FILES
             if not (DEPLOY / name).exists() or (DEPLOY / name).read_text() != deploy_file(name)]
    if args.check:
        for name in stale:
            print(f"deploy/nginx/{name} is out of date: run python -m tools.nginx_config")
        return 1 if stale else 0
    for name in stale:
        (DEPLOY / name).write_text(deploy_file(name))
        print(f"wrote deploy/nginx/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
