"""Settings of a server, from the command line or from tests: one frozen record, passed to
every part that needs one of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .model import Limits


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    snapshot_dir: Path = Path("snapshots")
    snapshot_interval: float = 5.0
    limits: Limits = field(default_factory=Limits)
    stale_after: float = 300.0
    poll_interval: float = 0.08
    max_request_bytes: int = 64 * 1024
    demo: bool = False
