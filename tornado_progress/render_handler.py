"""The `render` endpoint: the chart as a PNG, cached per (version, width, scale) and revalidated
by ETag, for embedding in other pages with a plain <img>."""

from __future__ import annotations

import time

from . import params, render, views
from .handlers import ApiHandler
from .model import UnknownJob

PNG_TYPE = "image/png"


class RenderHandler(ApiHandler):
    """The chart as a PNG, rendered once per (version, width, scale) and revalidated by ETag."""

    async def respond(self) -> None:
        jobid = params.identifier("jobid", self.arg("jobid"))
        width = int(params.bounded("width", self.arg("width"), 800, 200, 4000, integer=True))
        scale = params.bounded("scale", self.arg("scale"), 1, 1, 4)
        self.set_header("Cache-Control", "no-cache")
        try:
            job = self.store.get(jobid)
        except UnknownJob:
            self.set_status(404)
            self.write_png(render.render_not_found(jobid, scale))
            return
        key = ("png", job.version, width, scale)
        self.set_etag_header_for(key)
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        png = job.cache.get(key)
        if png is None:
            chart = render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()),
                                      time.time(), self.config.stale_after)
            png = render.render_chart(chart, width, scale)
            views.remember(job, key, png)
        self.write_png(png)

    def set_etag_header_for(self, key: tuple[str, int, int, float]) -> None:
        self.set_header("Etag", f'"{key[1]}-{key[2]}-{key[3]:g}"')

    def write_png(self, png: bytes) -> None:
        self.set_header("Content-Type", PNG_TYPE)
        self.finish(png)

    def compute_etag(self) -> str | None:
        return None  # set from the version above, never by hashing the body
