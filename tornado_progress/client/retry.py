"""When the server is down, busy or refusing: how long the sender waits before it tries again
(capped exponential backoff, or the server's Retry-After), and the log that tells of it at most
once a minute per kind of trouble.
"""

from __future__ import annotations

import logging
import math
import threading
import time

log = logging.getLogger("tornado_progress.client")

BACKOFF_FIRST_S = 0.5  # the first retry after a failure; doubled after each further one
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 300.0  # a server's Retry-After longer than this is cut to it
LOG_EVERY_S = 60.0  # the same kind of trouble is logged at most once per this many seconds


def backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` failed ones in a row (>= 1)."""
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures - 1, 16)))


def retry_after(header: str | None, failures: int) -> float:
    """The server's Retry-After (seconds or an HTTP date) when it sent one, else backoff."""
    if header:
        try:
            seconds = float(header)
        except ValueError:
            from email.utils import parsedate_to_datetime
            try:
                seconds = parsedate_to_datetime(header).timestamp() - time.time()
            except (TypeError, ValueError):
                return backoff(failures)
        if math.isfinite(seconds):
            return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)
    return backoff(failures)


class LogLimiter:
    """Logs the first line of each kind of trouble, then at most one per `LOG_EVERY_S`
    seconds, counting in it the lines skipped meanwhile."""

    MAX_KINDS = 1000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, level: int, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < LOG_EVERY_S:
                self._skipped[kind] = self._skipped.get(kind, 0) + 1
                return
            if len(self._last) >= self.MAX_KINDS:
                self._last.clear()
                self._skipped.clear()
            self._last[kind] = now
            skipped = self._skipped.pop(kind, 0)
        if skipped:
            message += " (and %d more like it in the last %d s)"
            args = (*args, skipped, int(LOG_EVERY_S))
        log.log(level, message, *args)
