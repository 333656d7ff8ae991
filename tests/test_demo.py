"""The demo promises a newcomer every state within a minute: checked against its own plan,
with the slowest pauses, rather than by watching it for a minute."""

from __future__ import annotations

from tornado_progress import demo
from tornado_progress.__main__ import parse_args, stale_after

MINUTE = 60.0


def test_every_state_shows_within_a_minute() -> None:
    firsts: dict[str, float] = {"not started": 0.0}
    for worker in demo.demo_workers():
        for state, at in demo.latest_first_time(worker, demo.DEMO_STALE_AFTER_S).items():
            firsts[state] = min(firsts.get(state, at), at)
    assert set(firsts) == {"not started", "running", "done", "failed", "stale"}
    assert max(firsts.values()) <= MINUTE, firsts
    # "Not started" lasts until the late worker's first report: long enough to be seen.
    assert max(worker.starts_after for worker in demo.demo_workers()) >= 10


def test_the_demo_server_has_a_short_stale_time_unless_told() -> None:
    assert stale_after(parse_args(["--demo"])) == demo.DEMO_STALE_AFTER_S
    assert stale_after(parse_args([])) == 300
    assert stale_after(parse_args(["--demo", "--stale-after", "90"])) == 90
