"""The `show` page: the live chart of a job for people in a browser.

Every user-supplied string reaches the page through Tornado's autoescaping template
expressions, never as markup.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from . import params, views
from .handlers import ApiHandler


class ShowHandler(ApiHandler):
    async def respond(self) -> None:
        jobid = params.identifier("jobid", self.arg("jobid"))
        job = self.store.find(jobid)
        self.set_header("Cache-Control", "no-store")
        if job is None:
            self.set_status(404)
            self.render("not_found.html", jobid=jobid)
            return
        now = time.time()
        self.render("show.html", job=job, workers=views.sorted_workers(job),
                    summary=views.summary(job, now, self.config.stale_after),
                    now=now, stale_after=self.config.stale_after,
                    render_query="?jobid=" + quote(jobid, safe=""))

    def fail(self, status: int, sentence: str) -> None:
        self.clear()
        self.set_status(status)
        self.render("error.html", status=status, sentence=sentence)
