"""The hottest endpoints answered at Tornado's HTTP layer: `update`, `updates` and `poll`, as
HTTPMessageDelegates, without an Application's routing and a RequestHandler per request.

They run the very functions the handlers run (writes.py, polls.py, the model, the views): only
the framing differs. Tornado's HTTP1Connection still does the HTTP/1.1 work (keep-alive,
pipelining, chunked bodies, 100-continue, header limits), and ProgressServer's RequestGate
still applies or strips proxy headers before a request gets here. What these requests do not
take (other methods, HEAD) goes to the Application, as does every other path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.client import responses
from typing import Any

from tornado import httputil

from . import access, request_log, views, writes
from .bodies import BodyBuilder
from .config import Settings
from .longpoll import Waiters
from .metrics import Counters
from .model import ModelError, Store
from .polls import PollWait

log = logging.getLogger("tornado_progress.fast_path")

JSON_TYPE = "application/json; charset=UTF-8"
# As Tornado's HTTPServerRequest: a query of more fields than this is refused.
MAX_QUERY_FIELDS = 1000
_ROUTES = {("GET", "/progress/update"): "update", ("POST", "/progress/update"): "update",
           ("POST", "/progress/updates"): "updates", ("GET", "/progress/poll"): "poll"}


@dataclass
class FastPath:
    """What the fast requests share with the handlers: the same objects make_app gives them."""

    store: Store
    waiters: Waiters
    bodies: BodyBuilder
    settings: Settings
    counters: Counters
    # Told (path, status, seconds) of every answer, when set: the benchmark's timing hook,
    # as Tornado's log_function is for the handlers.
    observe: Callable[[str, int, float], None] | None = None

    def delegate_for(self, start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders,
                     request_conn: httputil.HTTPConnection) -> FastRequest | None:
        """A delegate for this request if it is one of the fast ones, else None."""
        path, _, query = start_line.path.partition("?")
        endpoint = _ROUTES.get((start_line.method, path))
        if endpoint is None:
            return None
        return FastRequest(self, endpoint, start_line, headers, request_conn, query)


class FastRequest(httputil.HTTPMessageDelegate):
    """One request on the fast path, from its headers to its answer."""

    def __init__(self, shared: FastPath, endpoint: str, start_line: httputil.RequestStartLine,
                 headers: httputil.HTTPHeaders, request_conn: httputil.HTTPConnection,
                 query: str) -> None:
        self.shared = shared
        self.endpoint = endpoint
        self.start_line = start_line
        self.headers = headers
        self.request_conn = request_conn
        self.query = query
        self.started = time.perf_counter()
        self.chunks: list[bytes] = []
        self.size = 0
        self.answered = False
        self.poll: PollWait | None = None
        self.query_args: dict[str, list[bytes]] = {}

    # What the connection tells -------------------------------------------------------------

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        limit = self.shared.settings.max_request_bytes
        if len(self.start_line.path) > limit:
            self.refuse(413, writes.too_large(writes.LINE, len(self.start_line.path), limit))
        try:
            self.query_args = writes.parse_query(self.query, MAX_QUERY_FIELDS)
        except ValueError as error:  # as Tornado: a sentence, and the connection closes
            self.refuse(400, f"the request has too many parameters ({error}); send fewer")
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            self.refuse(413, writes.too_large(writes.BODY, int(length), limit))
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.answered:
            return None
        self.size += len(chunk)
        limit = self.shared.settings.max_request_bytes
        if self.size > limit:  # a chunked body has no Content-Length to check before
            self.refuse(413, writes.too_large(writes.BODY, self.size, limit, at_least=True))
        else:
            self.chunks.append(chunk)
        return None

    def finish(self) -> None:
        if self.answered:
            return
        if self.endpoint == "poll":
            asyncio.get_running_loop().create_task(self.answer_poll())
            return
        self.run(self.write_answer)

    def on_connection_close(self) -> None:
        if self.poll is not None:
            self.poll.client_left()

    # Answers -------------------------------------------------------------------------------

    def run(self, answer: Callable[[], bytes]) -> None:
        """Answers with `answer()`, or with the sentence of the error it raises."""
        try:
            body = answer()
        except Exception as error:
            self.fail(error)
            return
        self.reply(200, body)

    def fail(self, error: Exception) -> None:
        """A domain error as the contract's sentence; anything else a 500, and a log entry."""
        if isinstance(error, ModelError):
            self.reply(error.status, views.encode({"error": error.message}))
            return
        log.error("%s %s failed", self.start_line.method, self.start_line.path[:200],
                  exc_info=error)
        self.reply(500, views.encode({"error": views.SERVER_FAILED}))

    def write_answer(self) -> bytes:
        """An update or a batch of them: who may write, then what it writes."""
        query = self.query_args
        context: Any = self.request_conn.context  # type: ignore[attr-defined]
        client = access.client_group(context.remote_ip or "")
        body = b"".join(self.chunks)
        if self.endpoint == "updates":
            writes.check_write(self.headers, self.host(), writes.reader(query),
                               self.shared.settings)
            return writes.apply_batch(body, self.shared.store, client, self.shared.counters,
                                      query)
        arguments = query
        if self.start_line.method == "POST":
            arguments = {name: list(values) for name, values in query.items()}
            for name, values in writes.form_arguments(self.headers.get("Content-Type", ""),
                                                      body, self.headers).items():
                arguments.setdefault(name, []).extend(values)
        arg = writes.reader(arguments)
        writes.check_write(self.headers, self.host(), arg, self.shared.settings)
        return writes.apply_update(arg, self.shared.store, client, self.shared.counters)

    async def answer_poll(self) -> None:
        self.poll = PollWait(self.shared.store, self.shared.waiters, self.shared.bodies)
        # How Tornado tells of a client that leaves while the answer is awaited.
        connection: Any = self.request_conn  # an HTTP1Connection; the interface lacks it
        connection.set_close_callback(self.on_connection_close)
        try:
            body = await self.poll.answer(writes.reader(self.query_args))
        except Exception as error:
            self.fail(error)
            return
        if body is not None:
            self.reply(200, body, no_store=True)

    def host(self) -> str:
        return self.headers.get("Host") or "127.0.0.1"

    def refuse(self, status: int, sentence: str) -> None:
        """An answer before the body is read: the connection closes after it."""
        self.reply(status, views.encode({"error": sentence}), close=True)

    def reply(self, status: int, body: bytes, no_store: bool = False,
              close: bool = False) -> None:
        if self.answered:
            return
        self.answered = True
        connection: Any = self.request_conn  # an HTTP1Connection
        stream = connection.stream
        if not stream.closed():
            # The head in one piece with the body, framed as HTTP1Connection.write_headers would
            # (answer_head), and written as its write() does, without the HTTPHeaders and the
            # Future per answer; finish() waits for this write before the request ends.
            connection._pending_write = stream.write(answer_head(
                status, len(body), no_store, self.connection_header(connection, close)) + body)
        connection.finish()
        if status >= 400:
            self.shared.counters.refusal(self.endpoint, status)
        seconds = time.perf_counter() - self.started
        request_log.log_answer(status, self.start_line.method, self.start_line.path,
                               connection.context.remote_ip or "", seconds)
        if self.shared.observe is not None:
            self.shared.observe(self.start_line.path.partition("?")[0], status, seconds)

    def connection_header(self, connection: Any, close: bool) -> bytes:
        """The Connection header Tornado's write_headers would add: `close` to an HTTP/1.1
        client whose connection ends after this answer, `Keep-Alive` to an HTTP/1.0 client that
        asked for it; none otherwise. An answer before the body is read always closes (Tornado
        closes a connection whose request was not read to its end)."""
        if close:
            return CLOSE
        version = self.start_line.version
        if version == "HTTP/1.1":
            return CLOSE if getattr(connection, "_disconnect_on_finish", False) else b""
        if version == "HTTP/1.0" and \
                self.headers.get("Connection", "").lower() == "keep-alive":
            return KEEP_ALIVE
        return b""


CLOSE = b"Connection: close\r\n"
KEEP_ALIVE = b"Connection: Keep-Alive\r\n"
_HEADS: dict[tuple[int, bool, bytes], bytes] = {}


def answer_head(status: int, length: int, no_store: bool, connection: bytes) -> bytes:
    """A JSON answer's status line and headers, up to the blank line that ends them."""
    key = (status, no_store, connection)
    head = _HEADS.get(key)
    if head is None:
        head = _HEADS[key] = (f"HTTP/1.1 {status} {responses.get(status, '')}\r\n"
                              f"Content-Type: {JSON_TYPE}\r\n"
                              + ("Cache-Control: no-store\r\n" if no_store else "")).encode() \
            + connection + b"Content-Length: "
    return b"%s%d\r\n\r\n" % (head, length)
