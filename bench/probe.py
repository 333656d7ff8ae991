"""An event-loop stall probe: a periodic callback that records how late it runs."""

from __future__ import annotations

import asyncio
import time


class StallProbe:
    """While running, wakes every `period` seconds and keeps the worst lateness seen."""

    def __init__(self, period: float = 0.001) -> None:
        self.period = period
        self.worst = 0.0
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            expected = time.perf_counter() + self.period
            await asyncio.sleep(self.period)
            late = time.perf_counter() - expected
            self.samples.append(late)
            self.worst = max(self.worst, late)

    def __enter__(self) -> StallProbe:
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
