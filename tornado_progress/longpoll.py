"""Per-job waiters for long polling, as in Tornado's chat demo but keyed by job.

`Store` calls `Waiters.wake(key)` on every change; only that job's waiters are woken, and a
job with nobody watching costs one dict lookup. A waiter whose client goes away is cancelled
and removed at once, so parked polls never pile up.
"""

from __future__ import annotations

import asyncio


class Waiters:
    def __init__(self) -> None:
        self._by_job: dict[str, set[asyncio.Future[None]]] = {}
        self.count = 0

    def wake(self, key: str) -> None:
        waiters = self._by_job.pop(key, None)
        if waiters is None:
            return
        self.count -= len(waiters)
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def add(self, key: str) -> asyncio.Future[None]:
        """A future that completes at the next change of job `key`."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._by_job.setdefault(key, set()).add(future)
        self.count += 1
        return future

    def discard(self, key: str, future: asyncio.Future[None]) -> None:
        """Forgets a waiter that timed out or whose client left."""
        waiters = self._by_job.get(key)
        if waiters is None or future not in waiters:
            return
        waiters.remove(future)
        self.count -= 1
        if not waiters:
            del self._by_job[key]
        future.cancel()

    async def wait(self, key: str, future: asyncio.Future[None], timeout: float) -> bool:
        """Waits until `future` (from `add`) completes, is discarded, or `timeout` seconds pass;
        True only if the job changed."""
        try:
            await asyncio.wait((future,), timeout=timeout)
        finally:
            self.discard(key, future)
        return future.done() and not future.cancelled()
