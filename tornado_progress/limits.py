"""Limits that protect the server (every one an option) and the per-client rate of new jobs:
plain values and arithmetic, used by the model's Store."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds that protect the server; every one has a command-line option."""

    max_jobs: int = 10_000
    max_workers_per_job: int = 100_000
    # About 2 GB at the ~400 bytes a worker takes: the whole server, whatever the jobs.
    max_workers: int = 5_000_000
    keep_seconds: float = 7 * 86400.0
    # The longest a job's own maxage may keep it (option --max-keep-days).
    max_keep_seconds: float = 30 * 86400.0
    # Every new job must carry a key (option --require-key).
    require_key: bool = False
    # New jobs one client address may make in a minute (option --new-jobs-per-minute); 0: any.
    new_jobs_per_minute: int = 60


class NewJobRate:
    """A token bucket per client address: `per_minute` new jobs, refilled evenly, so that one
    client cannot fill the job table. Bounded: past `max_clients` addresses, those whose bucket
    is full again are forgotten (they would start full anyway)."""

    def __init__(self, per_minute: int, max_clients: int = 65_536) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client: str, now: float) -> bool:
        """True, and one token fewer, if `client` may make a new job now."""
        if self.per_minute <= 0:
            return True
        tokens, at = self._buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return False
        if client not in self._buckets and len(self._buckets) >= self.max_clients:
            self._forget_full(now)
        self._buckets.pop(client, None)  # re-inserted: the dict stays in order of last use
        self._buckets[client] = (tokens - 1.0, now)
        return True

    def _forget_full(self, now: float) -> None:
        """Forgets the clients whose allowance is full again; if that frees too little, the
        least recently active half, never the whole table (an attacker's own entry with it)."""
        refill = 60.0 / self.per_minute
        self._buckets = {client: (tokens, at) for client, (tokens, at) in self._buckets.items()
                         if tokens + (now - at) / refill < self.per_minute}
        if len(self._buckets) >= self.max_clients:
            for client in list(self._buckets)[:len(self._buckets) // 2]:
                del self._buckets[client]
