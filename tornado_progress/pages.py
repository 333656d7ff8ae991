"""The `show` page: the live chart of a job for people in a browser.

The page is plain HTML from templates/show.html with its script and styles from static/. It
carries the job's first full JSON (the body `status` would send) so that the chart appears with
the page, then follows the job by long polling `poll` from the browser.

Every user-supplied string reaches the page either through Tornado's autoescaping template
expressions or inside that JSON, where every `<` is written `\\u003c` so that no string can
close the script element; the browser script puts strings in as text, never as markup.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from . import params, views
from .handlers import ApiHandler
from .model import Job

# Defence in depth behind the escaping: scripts and requests only from this server. Inline
# styles stay allowed for the palette's custom properties in templates/base.html.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)

# Where the app serves static/ (app.py); the page lives at /progress/show.
STATIC_PREFIX = "/progress/"
# Bodies bigger than this are cut into pieces and escaped in a thread.
INLINE_MAX_BYTES = 1 << 20
# A big job goes to the page in pieces of this many workers (split_workers).
PART_WORKERS = 5000
WORKERS_KEY = b'"workers":['
FIRST_WORKER = b'{"workid":'
WORKER_SEPARATOR = b'},{"workid":'
BODY_END = b"]}\n"
# The summary's state chips: summary key, words, glyph (as static/show-state.js has them).
CHIPS = (("running", "Running", "\u25b8"), ("stale", "Stale", "\u2026"),
         ("done", "Done", "\u2713"), ("failed", "Failed", "\u2717"),
         ("waiting", "Not started", "\u25cb"))


def split_workers(body: bytes, per_part: int = PART_WORKERS) -> tuple[bytes, list[bytes]]:
    """A job body (views.encode_job's bytes) as the job with its first `per_part` workers and
    the other workers as JSON arrays of `per_part` each, so that the page parses a big job a
    piece at a time and no single task of the browser grows long. Cut at `},{"workid":`,
    which only a boundary between two (flat) worker objects holds: inside a JSON string
    every `"` is escaped. A body of another shape is left whole."""
    start = body.find(WORKERS_KEY)
    items = body[start + len(WORKERS_KEY):-len(BODY_END)]
    if start < 0 or not body.endswith(BODY_END) or not items.startswith(FIRST_WORKER):
        return body, []
    pieces = items[len(FIRST_WORKER):-1].split(WORKER_SEPARATOR)
    if len(pieces) <= per_part:
        return body, []
    parts = [FIRST_WORKER + WORKER_SEPARATOR.join(pieces[at:at + per_part]) + b"}"
             for at in range(0, len(pieces), per_part)]
    head = body[:start + len(WORKERS_KEY)] + parts[0] + BODY_END
    return head, [b"[" + part + b"]" for part in parts[1:]]


def page_json(body: bytes) -> tuple[str, list[str]]:
    """The job for the page's <script type="application/json"> elements: split_workers'
    pieces, each made safe by script_json."""
    head, parts = split_workers(body)
    return script_json(head), [script_json(part) for part in parts]


def script_json(body: bytes) -> str:
    """A JSON body made safe to sit inside <script type="application/json">.

    Only `<` can end the element (`</script>`) or switch the parser's state (`<!--`); outside
    strings JSON has no `<`, and inside strings `\\u003c` decodes to the same character.
    """
    return body.decode().replace("<", "\\u003c")


def finished(summary: dict[str, Any]) -> bool:
    """Every worker done or failed, none of the expected ones waiting (show-state.js too)."""
    active = summary["running"] + summary["stale"] + summary["waiting"]
    return bool(summary["workers"]) and active == 0


def page_title(summary: dict[str, Any], name: str) -> str:
    """"42% name", marked "✗ " once a worker failed and "✓ " when all is done: the tab tells
    without being looked at. The page's script keeps it so (title in show-news.js)."""
    mark = "\u2717 " if summary["failed"] else "\u2713 " if finished(summary) else ""
    return f"{mark}{views.percent(summary['fraction'])}% {name}"


class PageHandler(ApiHandler):
    """A page for people: this server's scripts only, framing and referrer rules, static files
    relative to the page, and errors as HTML pages with the same sentences."""

    def static_url(self, path: str, include_host: bool | None = None, **kwargs: Any) -> str:
        """Relative to the page (`static/...` from `/progress/show`), so that the page still
        finds its files behind a proxy that serves it under a prefix."""
        url = super().static_url(path, include_host, **kwargs)
        return url.removeprefix(STATIC_PREFIX) if not include_host else url

    def page_headers(self) -> None:
        """Only this server's scripts; framed only where --frame-ancestors allows; and the
        page's address, whose jobid may be private, is never sent on as a Referer."""
        self.set_header("Content-Security-Policy", f"{CONTENT_SECURITY_POLICY}; "
                                                   f"frame-ancestors {self.config.frame_ancestors}")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Content-Type-Options", "nosniff")

    def error_body(self, sentence: str) -> None:
        self.page_headers()
        self.render("error.html", status=self.get_status(), sentence=sentence)


class ShowHandler(PageHandler):
    async def respond(self) -> None:
        jobid = params.identifier("jobid", self.arg("jobid"))
        job = self.store.find(jobid)
        self.set_header("Cache-Control", "no-store")
        self.page_headers()
        if job is None:
            self.set_status(404)
            self.render("not_found.html", jobid=jobid)
            return
        await self.render_job(job)

    async def render_job(self, job: Job) -> None:
        now = self.store.clock()
        stale_after = self.config.stale_after
        summary = await self.bodies.summary(job, now)
        body = await self.bodies.full(job, now)
        if len(body) > INLINE_MAX_BYTES:  # a big job's pieces are cut off the event loop
            initial_json, parts = await asyncio.get_running_loop().run_in_executor(
                None, page_json, body)
        else:
            initial_json, parts = page_json(body)
        self.render("show.html", job=job, summary=summary, chips=CHIPS,
                    title=page_title(summary, job.desc or job.jobid),
                    percent=views.percent(summary["fraction"]),
                    stale_after=stale_after, elapsed=views.duration(now - job.created),
                    eta=views.duration(summary["eta_s"]),
                    initial_json=initial_json, initial_parts=parts,
                    render_query="?jobid=" + quote(job.jobid, safe=""))
