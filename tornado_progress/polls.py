"""One long poll, whichever path serves it (the `poll` handler or the fast path): its
parameters, its wait on the job's waiters (paced), and its answer's body. A client that leaves
while the poll waits is forgotten at once (`client_left`)."""

from __future__ import annotations

import asyncio

from . import params
from .bodies import BodyBuilder
from .longpoll import Waiters
from .model import Store
from .writes import ArgReader

DEFAULT_TIMEOUT_S = 25.0
MAX_TIMEOUT_S = 60.0


class PollWait:
    def __init__(self, store: Store, waiters: Waiters, bodies: BodyBuilder) -> None:
        self.store = store
        self.waiters = waiters
        self.bodies = bodies
        self.gone = False
        self._parked: tuple[str, asyncio.Future[bool]] | None = None

    async def answer(self, arg: ArgReader) -> bytes | None:
        """The poll's body: at once when the job moved past `since`, else at its next change
        (at the end of its pacing interval) or at `timeout`; None once the client has gone."""
        jobid = params.identifier("jobid", arg("jobid", False))
        since = params.version("since", arg("since", False))
        timeout = params.bounded("timeout", arg("timeout", False), DEFAULT_TIMEOUT_S, 0.0,
                                 MAX_TIMEOUT_S)
        job = self.store.get(jobid)
        behind = job.generation <= since < job.version  # a delta is due
        parked = self.waiters.park_unless_due(job.key, behind, timeout) \
            if behind or job.version == since else None  # else: the whole job, now
        if parked is not None:
            self._parked = (job.key, parked)
            await parked
            self._parked = None
            if self.gone:
                return None
            job = self.store.get(jobid)  # deleted or expired meanwhile: 404
        body = await self.bodies.poll(job, since, self.store.clock())
        return None if self.gone else body

    def client_left(self) -> None:
        self.gone = True
        if self._parked is not None:
            self.waiters.discard(*self._parked)
