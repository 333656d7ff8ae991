"""HTTP handlers: parse and validate, call the model, shape the answer.

Every handler gets its collaborators (store, waiters, snapshotter, renderer, settings) as
`initialize()` keyword arguments. `ApiHandler` turns domain errors into the contract's JSON error
sentences, so no handler formats an error itself.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tornado import httputil, web

from . import access, params, views, writes
from .answer_cache import AnswerCache
from .bodies import BodyBuilder
from .config import Settings
from .longpoll import Waiters
from .metrics import Counters
from .model import ModelError, Store
from .polls import PollWait
from .snapshots import Snapshotter

if TYPE_CHECKING:  # the render endpoint is built on this module
    from .render_handler import ChartRenderer

JSON_TYPE = "application/json; charset=UTF-8"
# Request headers (and so request lines), and bodies, the server reads at most; past it the
# connection is closed. Below it, more than --max-request-bytes is answered 413 with a sentence.
HARD_REQUEST_LIMIT = 1024 * 1024


class ApiHandler(web.RequestHandler):
    """Base of every JSON endpoint: collaborators, argument access and error sentences."""

    def initialize(self, store: Store, waiters: Waiters, snapshotter: Snapshotter,
                   renderer: ChartRenderer, answers: AnswerCache, bodies: BodyBuilder,
                   settings: Settings, started: float, counters: Counters,
                   endpoint: str = "other") -> None:
        self.store = store
        self.counters = counters
        self.endpoint = endpoint
        self.answers = answers
        self.bodies = bodies
        self.waiters = waiters
        self.snapshotter = snapshotter
        self.renderer = renderer
        self.config = settings
        self.started = started

    def arg(self, name: str, lenient: bool = False) -> str | None:
        """A parameter exactly as sent (writes.read_arg)."""
        return writes.read_arg(self.request.arguments, name, lenient)

    def prepare(self) -> None:
        # The server reads request lines up to HARD_REQUEST_LIMIT, so that one longer than
        # --max-request-bytes gets this sentence instead of a dropped connection.
        if len(self.request.uri or "") > self.config.max_request_bytes:
            self.too_large("line", len(self.request.uri or ""))

    def too_large(self, part: str, size: int, at_least: bool = False) -> None:
        self.fail(413, writes.too_large(part, size, self.config.max_request_bytes, at_least))

    def get(self) -> Awaitable[None] | None:
        return self.guarded()

    def guarded(self) -> Awaitable[None] | None:
        """Runs `respond`, turning a domain error into the contract's sentence. A handler whose
        answer is ready at once stays synchronous: no coroutine per update."""
        try:
            self.check_access()
            pending = self.respond()
        except ModelError as error:
            self.fail(error.status, error.message)
            return None
        return None if pending is None else self._settle(pending)

    async def _settle(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except ModelError as error:
            self.fail(error.status, error.message)

    def check_access(self) -> None:
        """Raises a ModelError when this request may not do what it asks; reads are open."""

    def respond(self) -> Awaitable[None] | None:
        raise NotImplementedError

    def fail(self, status: int, sentence: str) -> None:
        """Answers with an error sentence, dropping whatever headers the handler had set."""
        self.clear()
        self.set_status(status)
        self.counters.refusal(self.endpoint, status)
        self.error_body(sentence)

    def error_body(self, sentence: str) -> None:
        """The error answer's body: the contract's JSON; the show page renders HTML."""
        self.write_json({"error": sentence})

    def write_json(self, document: Any) -> None:
        self.write_bytes(views.encode(document))

    def write_bytes(self, body: bytes) -> None:
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors Tornado raises itself (bad UTF-8, a wrong method) as sentences too, in the
        handler's own form (`fail`)."""
        error = kwargs.get("exc_info", (None, None))[1]
        sentence = self._reason
        if status_code == 405:
            allowed = [method for method in ("GET", "HEAD", "POST")
                       if method in self.SUPPORTED_METHODS
                       and getattr(type(self), method.lower()) is not getattr(
                           web.RequestHandler, method.lower())]
            self.set_header("Allow", ", ".join(allowed))
            sentence = (f"{self.request.method} is not allowed on {self.request.path}; use "
                        f"{' or '.join(allowed)}")
        elif status_code >= 500:
            sentence = views.SERVER_FAILED
        elif isinstance(error, web.HTTPError) and error.log_message:
            sentence = error.log_message % error.args if error.args else error.log_message
        self.counters.refusal(self.endpoint, status_code)
        self.error_body(sentence)  # Tornado has cleared the headers and set the status

    def compute_etag(self) -> str | None:
        return None  # JSON answers are live state: no point hashing every body

    def absolute_url(self, path: str) -> str:
        """An absolute URL on this server as the client sees it, behind a proxy too."""
        headers = self.request.headers
        # Tornado has set the protocol from a trusted proxy's X-Forwarded-Proto or X-Scheme.
        scheme = self.request.protocol
        host = proxy_header(headers, "X-Forwarded-Host", _HOST) or self.request.host
        port = proxy_header(headers, "X-Forwarded-Port", _PORT)
        if port and not _HAS_PORT.search(host):
            default = {"http": "80", "https": "443"}.get(scheme)
            if port != default:
                host = f"{host}:{port}"
        prefix = proxy_header(headers, "X-Forwarded-Prefix", _PREFIX).rstrip("/")
        return f"{scheme}://{host}{prefix}{path}"

    def job_urls(self, jobid: str) -> dict[str, str]:
        query = "?jobid=" + quote(jobid, safe="")
        return {name + "_url": self.absolute_url(f"/progress/{name}{query}")
                for name in ("show", "render", "status")}


_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", re.ASCII)
_HAS_PORT = re.compile(r":[0-9]+$", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_PREFIX = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*", re.ASCII)


def proxy_header(headers: httputil.HTTPHeaders, name: str, shape: re.Pattern[str]) -> str:
    """The last value of a comma-separated proxy header (the one our own proxy added, as
    Tornado's `xheaders` reads them), or "" when it is absent or not of the expected shape."""
    value = (headers.get(name) or "").rsplit(",", 1)[-1].strip()
    return value if shape.fullmatch(value) else ""


@web.stream_request_body
class FormHandler(ApiHandler):
    """An endpoint that also takes a form-encoded POST, whose size is checked before it is read,
    so an oversized body is answered with a sentence instead of a dropped connection."""

    _body: list[bytes]

    def prepare(self) -> None:
        self._body = []
        self._body_size = 0
        super().prepare()
        if self._finished or self.request.method != "POST":
            return
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.config.max_request_bytes:
            self.too_large("body", int(length))

    def data_received(self, chunk: bytes) -> None:
        # A chunked body has no Content-Length to check before: count it as it comes.
        if self._finished:
            return
        self._body_size += len(chunk)
        if self._body_size > self.config.max_request_bytes:
            self.too_large("body", self._body_size, at_least=True)
            return
        self._body.append(chunk)

    def post(self) -> Awaitable[None] | None:
        if self._finished:  # refused while the body came in
            return None
        try:
            form = self.body_form()
        except ModelError as error:
            self.fail(error.status, error.message)
            return None
        for name, values in form.items():
            self.request.body_arguments.setdefault(name, []).extend(values)
            self.request.arguments.setdefault(name, []).extend(values)
        return self.guarded()

    def body_form(self) -> dict[str, list[bytes]]:
        return writes.form_arguments(self.request.headers.get("Content-Type", ""),
                                     b"".join(self._body), self.request.headers)

    def check_access(self) -> None:
        """Writes: never from another site's page, and with a token when the server wants one
        (read after a POST body, which may carry it)."""
        writes.check_write(self.request.headers, self.request.host, self.arg, self.config)

    def client(self) -> str:
        """The client as per-client limits count it."""
        return access.client_group(self.request.remote_ip or "")

    def write_key(self) -> str | None:
        return params.write_key(self.arg("key"))


class CreateHandler(FormHandler):
    def respond(self) -> None:
        given = self.arg("jobid")
        jobid = self.new_jobid() if given is None else params.identifier("jobid", given)
        desc, truncated = params.description(self.arg("desc", lenient=True))
        job = self.store.create(
            jobid, desc, self.write_key(), self.client(),
            keep_seconds=params.seconds("maxage", self.arg("maxage")),
            expected=params.count("workers", self.arg("workers")),
            metrics=params.flag("metrics", self.arg("metrics"), default=False),
            notify=params.notify_url(self.arg("notify"), self.config.notify_allow))
        self.write_json({"jobid": job.jobid, "desc": job.desc, "version": job.version,
                         "truncated": truncated, "maxage": self.store.keep_seconds(job),
                         "workers": job.expected, "metrics": job.metrics,
                         "notify": job.notify, **self.job_urls(job.jobid)})

    def new_jobid(self) -> str:
        """An id nobody can guess (128 random bits), or the one a trusted proxy that routes
        jobs by id chose (the server removes the header from anyone else)."""
        routed = self.request.headers.get(access.NEW_JOBID_HEADER)
        if routed and len(routed) >= params.NEW_JOBID_MIN_CHARS:
            return params.identifier(access.NEW_JOBID_HEADER, routed)
        return secrets.token_urlsafe(16)


class UpdateHandler(FormHandler):
    def respond(self) -> None:
        self.write_bytes(writes.apply_update(self.arg, self.store, self.client(), self.counters))


class UpdatesHandler(FormHandler):
    """A batch of updates, one form-encoded line each; POST only."""

    SUPPORTED_METHODS = ("POST",)

    def body_form(self) -> dict[str, list[bytes]]:
        return {}  # the body is lines of updates, not one form

    def respond(self) -> None:
        self.write_bytes(writes.apply_batch(b"".join(self._body), self.store, self.client(),
                                            self.counters, self.request.query_arguments))


class DeleteHandler(FormHandler):
    def respond(self) -> None:
        jobid = params.identifier("jobid", self.arg("jobid"))
        self.store.delete(jobid, self.write_key())
        self.write_json({"jobid": jobid, "deleted": True})


class StatusHandler(ApiHandler):
    async def respond(self) -> None:
        job = self.store.get(params.identifier("jobid", self.arg("jobid")))
        self.set_header("Cache-Control", "no-store")
        self.write_bytes(await self.bodies.full(job, self.store.clock()))


class PollHandler(ApiHandler):
    """Long poll: answers when the job's version moves past `since`, or at `timeout`."""

    wait: PollWait | None = None

    async def respond(self) -> None:
        self.wait = PollWait(self.store, self.waiters, self.bodies)
        body = await self.wait.answer(self.arg)
        if body is not None:
            self.set_header("Cache-Control", "no-store")
            self.write_bytes(body)

    def on_connection_close(self) -> None:
        if self.wait is not None:
            self.wait.client_left()


class HealthHandler(ApiHandler):
    def head(self) -> Awaitable[None] | None:
        return self.get()  # `curl -I` and load balancers' checks; Tornado sends no body

    def respond(self) -> None:
        self.store.sweep()  # count only the jobs that are still alive
        self.set_header("Cache-Control", "no-store")
        error = self.snapshotter.error
        self.write_json({
            "status": "degraded" if error else "ok",
            "snapshot_error": error,
            "jobs": len(self.store.jobs),
            "workers": self.store.worker_count,
            "waiters": self.waiters.count,
            "version": self.store.version,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "last_snapshot": self.snapshotter.last_snapshot,
        })


class NotFoundHandler(ApiHandler):
    def respond(self) -> None:
        self.fail(404, f"there is no endpoint {self.request.path!r}; see /progress/health and "
                       "the README for the endpoints")

