"""Settings of a server, from the command line or from tests: one frozen record, passed to
every part that needs one of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .limits import Limits

# Addresses whose X-Forwarded-* and X-Real-Ip headers are believed: a proxy on this machine.
LOOPBACK = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    snapshot_dir: Path = Path("snapshots")
    snapshot_interval: float = 5.0
    limits: Limits = field(default_factory=Limits)
    stale_after: float = 300.0
    poll_interval: float = 0.08
    # The share of the event loop a job's viewers may take: their pacing widens to keep it.
    viewer_share: float = 0.5
    max_request_bytes: int = 64 * 1024
    demo: bool = False
    # Connections (server.py)
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    body_timeout: float = 30.0
    max_connections: int = 10_000
    max_connections_per_address: int = 256
    send_timeout: float = 30.0
    # Memory (answer_cache.py, render_handler.py)
    cache_bytes: int = 64 * 1024 * 1024
    max_render_pixels: int = 16_000_000
    # Who may write (access.py)
    write_tokens: frozenset[str] = frozenset()
    trusted_proxies: tuple[str, ...] = LOOPBACK
    frame_ancestors: str = "'self'"
    # The home page lists the jobs, and `jobs` answers (off by default: ids may be private).
    list_jobs: bool = False
    # URL prefixes that create's notify may name (option --notify-allow); none: notify is off.
    notify_allow: tuple[str, ...] = ()
    # update, updates and poll answered below the Application (fast_path.py); off, they go
    # through the handlers like every other endpoint (the tests run both ways).
    fast_path: bool = True
