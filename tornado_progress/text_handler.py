"""`text`: a job as terminal text, once or followed (`follow=1`): the answer stays open and a
new frame is written at each change, paced like polls, so that `curl -N` is a live view."""

from __future__ import annotations

import asyncio

from tornado.iostream import StreamClosedError

from . import params
from .handlers import ApiHandler
from .model import Job
from .text_view import TextOptions

TEXT_TYPE = "text/plain; charset=utf-8"
# Home and clear screen: each followed frame replaces the last one in a terminal.
CLEAR = b"\x1b[H\x1b[2J"
# A followed view is drawn again after this long without a change: ages and stale marks move.
REDRAW_S = 10.0


class TextHandler(ApiHandler):
    _parked: tuple[str, asyncio.Future[bool]] | None = None
    _gone = False

    async def respond(self) -> None:
        jobid = params.identifier("jobid", self.arg("jobid"))
        options = TextOptions(
            width=int(params.bounded("width", self.arg("width"), 80, 20, 1000, integer=True)),
            color=params.flag("color", self.arg("color"), default=False),
            rows=int(params.bounded("rows", self.arg("rows"), 500, 1, 100_000, integer=True)))
        follow = params.flag("follow", self.arg("follow"), default=False)
        timeout = params.bounded("timeout", self.arg("timeout"), 600.0, 0.0, 3600.0)
        clear = params.flag("clear", self.arg("clear"), default=True)
        job = self.store.get(jobid)
        self.set_header("Content-Type", TEXT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        if not follow:
            self.finish(await self.bodies.text(job, self.store.clock(), options))
            return
        self.set_header("X-Accel-Buffering", "no")  # nginx: pass each frame on at once
        await self.follow(job, options, timeout, CLEAR if clear else b"")

    async def follow(self, job: Job | None, options: TextOptions, timeout: float,
                     clear: bytes) -> None:
        """A frame now and at each change (or every REDRAW_S), until the job is deleted,
        `timeout` passes or the client leaves."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while job is not None:
            shown = job.version
            frame = await self.bodies.text(job, self.store.clock(), options)
            if not await self.send(clear + frame):
                return
            left = deadline - loop.time()
            if left <= 0:
                break
            await self.wait_for_change(job, shown, min(left, REDRAW_S))
            if self._gone:
                return
            job = self.store.find(job.jobid)
        if job is None:
            await self.send(b"\nthe job was deleted\n")
        if not self._gone:
            self.finish()

    async def wait_for_change(self, job: Job, shown: int, timeout: float) -> None:
        """Until the job changes after version `shown` (at the end of its pacing interval, as
        polls are answered) or `timeout` passes."""
        parked = self.waiters.park_unless_due(job.key, shown < job.version, timeout)
        if parked is None:
            return
        self._parked = (job.key, parked)
        await parked
        self._parked = None

    async def send(self, data: bytes) -> bool:
        """Writes and flushes; False once the client is gone."""
        try:
            self.write(data)
            await self.flush()
        except StreamClosedError:
            self._gone = True
        return not self._gone

    def on_connection_close(self) -> None:
        self._gone = True
        if self._parked is not None:
            self.waiters.discard(*self._parked)
