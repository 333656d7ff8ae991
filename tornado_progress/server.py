"""The HTTP server: Tornado's, with the defences a server facing unknown clients needs.

- Timeouts: a new connection has `header_timeout` seconds to send its first request's headers,
  a kept-alive one `idle_timeout` for each later request, a body `body_timeout`. The first two
  are kept by the connection table, checked a few times per timeout, instead of a timer that
  Tornado would set and cancel for every request; a body that came whole with its head is not
  timed either.
- Caps on open connections, in all (kept below the open-file limit) and per client address,
  and a deadline for answers that clients do not read (`connections.py` holds the rules); a
  newcomer past a cap with no waiting connection to close gets a canned 503 and is closed
  (lingering.py: so that the client reads the 503 rather than a reset).
- When `accept()` fails for lack of descriptors, accepting pauses briefly and one log line per
  interval says so, instead of a traceback per attempt at full CPU.
- X-Forwarded-* and X-Real-Ip are believed only from `trusted_proxies`; from anyone else they
  are removed before any handler sees them.
- Header lines are parsed in one step when they are plainly well-formed (request_head.py).
- Requests Tornado refuses before a handler runs (malformed header lines, a bad Host, over 1,000
  query fields, a negative Content-Length) get the contract's JSON sentence, not an empty 400.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import resource
import socket
import time
from collections.abc import Awaitable
from typing import Any, cast

from tornado import httputil
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.iostream import IOStream

from .access import PROXY_HEADERS, TrustedProxies, client_group
from .config import Settings
from .connections import Connection, ConnectionTable
from .fast_path import FastPath
from .lingering import Lingering
from .request_head import ServerConnection

log = logging.getLogger("tornado_progress.server")

# Descriptors kept free of connections: snapshot files, the log, render threads, the listener.
RESERVED_DESCRIPTORS = 64
# After accept() fails for lack of descriptors, accepting rests this long (nginx rests 500 ms).
ACCEPT_PAUSE_S = 0.25
# At most one log line per this many seconds about refused or failed accepts.
LOG_INTERVAL_S = 10.0
# Seconds at most between two looks for answers that clients do not read and for connections
# past their header or idle timeout.
SWEEP_S = 1.0
# Looks per header (or idle) timeout, at least: a late connection is closed at most this
# fraction of its timeout late.
SWEEPS_PER_TIMEOUT = 4
# Bytes a stream may hold unasked for while it keeps listening for more (SentenceStream).
KEEP_LISTENING_BYTES = 16 * 1024
# Connections accepted per readiness event, as Tornado's own accept handler does.
ACCEPTS_PER_EVENT = 128
_NO_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_TORNADO_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n\r\n"
_MALFORMED = ("the request is not well-formed HTTP/1.1 (its request line, a header line or the "
              "framing of its body); the connection is closed")


def canned_answer(status: str, sentence: str) -> bytes:
    """A complete HTTP answer that closes the connection, carrying the contract's JSON."""
    body = json.dumps({"error": sentence}).encode() + b"\n"
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def raise_descriptor_limit() -> int:
    """Raises the soft limit of open files to the hard limit; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warning("could not raise the open-file limit from %d to %d: %s",
                        soft, target, error)
    return soft


class SentenceStream(IOStream):
    """An IOStream that turns Tornado's bare 400 into an answer with a sentence: the one place
    Tornado answers a request without asking the application."""

    problem: str = _MALFORMED

    def write(self, data: bytes | memoryview) -> Any:
        if len(data) == len(_TORNADO_BAD_REQUEST) and data == _TORNADO_BAD_REQUEST:
            data = canned_answer("400 Bad Request", self.problem)
        return super().write(data)

    _deciding = False  # set between reading an event's bytes and choosing what to listen for

    def _handle_events(self, fd: Any, events: int) -> None:
        try:
            super()._handle_events(fd, events)
        finally:
            self._deciding = False

    def _handle_read(self) -> None:
        super()._handle_read()
        self._deciding = True

    def reading(self) -> bool:
        """Also True, while the stream chooses what to listen for after reading, when it holds
        a few bytes that nobody has asked for yet: a viewer's next poll, sent the moment its
        answer came, before Tornado asks for the next request. Tornado would stop listening
        for reads there and start again when the poll parks (two system calls and a selector's
        bookkeeping per poll); so the stream keeps listening while it holds up to
        KEEP_LISTENING_BYTES, and stops, as Tornado does, past that, so that a client sending
        ahead is held back by TCP instead of filling the server's memory."""
        return super().reading() or (
            self._deciding and 0 < self._read_buffer_size <= KEEP_LISTENING_BYTES)

    def set_nodelay(self, value: bool) -> None:
        """TCP_NODELAY stays on for the connection's life (set in `ProgressServer._serve`).
        Tornado turns it on when an answer is finished and off before the next request: two
        system calls per request, so that Nagle's algorithm may coalesce writes that leave
        in one piece anyway."""


class ProgressServer(HTTPServer):
    """Tornado's HTTPServer with timeouts, a connection cap, accept back-off, trusted proxies
    and sentences for malformed requests (see the module docstring)."""

    def initialize(  # type: ignore[override]
            self, request_callback: httputil.HTTPServerConnectionDelegate, settings: Settings,
            max_request_bytes: int) -> None:
        # Tornado's servers are Configurable: `initialize` is their constructor.
        super().initialize(request_callback, xheaders=False, max_body_size=max_request_bytes,
                           max_header_size=max_request_bytes,
                           body_timeout=settings.body_timeout)
        # The table keeps the header and idle timeouts (_sweep); Tornado, given none, would
        # still time every request's headers, with an hour.
        self.conn_params.header_timeout = None
        self.settings = settings
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.table = ConnectionTable(settings.max_connections,
                                     settings.max_connections_per_address,
                                     settings.send_timeout, settings.cache_bytes,
                                     settings.header_timeout, settings.idle_timeout)
        self._refused = self._failed_accepts = 0
        self.lingering = Lingering()
        self._last_report = 0.0
        self._accepting: dict[int, bool] = {}
        shortest = min(settings.header_timeout, settings.idle_timeout)
        self._sweeper = PeriodicCallback(
            self._sweep, 1000 * min(SWEEP_S, shortest / SWEEPS_PER_TIMEOUT))
        # update, updates and poll below the Application, when make_app built that path.
        app_settings = getattr(request_callback, "settings", {})
        self.fast_path: FastPath | None = app_settings.get("fast_path")

    @property
    def max_connections(self) -> int:
        return self.table.max_connections

    def _refusal(self, option: str) -> bytes:
        if option == "--max-connections":
            limit = f"{self.table.max_connections} open connections"
        else:
            limit = f"{self.table.max_per_address} open connections from one address"
        return canned_answer("503 Service Unavailable", f"the server holds its limit of {limit} "
                             f"(option {option}); try again in a few seconds")

    def fit_to_descriptors(self, descriptor_limit: int) -> None:
        """Keeps the connection cap below the open-file limit."""
        room = max(16, descriptor_limit - RESERVED_DESCRIPTORS)
        if room < self.table.max_connections:
            log.info("at most %d open connections: the open-file limit is %d",
                     room, descriptor_limit)
            self.table.max_connections = room

    @property
    def connection_count(self) -> int:
        return len(self.table)

    def _sweep(self) -> None:
        closed = self.table.closed_slow
        now = time.monotonic()
        self.table.close_idle(now)
        self.table.sweep(now)
        if self.table.closed_slow > closed:
            self._report(f"closed {self.table.closed_slow - closed} connections that did not "
                         "read their answers (option --send-timeout)")

    # Accepting -----------------------------------------------------------------------------

    def add_sockets(self, sockets: Any) -> None:
        io_loop = IOLoop.current()
        for sock in sockets:
            fd = sock.fileno()
            self._sockets[fd] = sock
            io_loop.add_handler(sock, functools.partial(self._accept_ready, sock), IOLoop.READ)
            self._accepting[fd] = True
            self._handlers[fd] = functools.partial(self._remove_listener, sock)
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()
        self.lingering.close_all()
        super().stop()

    def _remove_listener(self, sock: socket.socket) -> None:
        if self._accepting.pop(sock.fileno(), False):
            IOLoop.current().remove_handler(sock)

    def _accept_ready(self, sock: socket.socket, fd: Any, events: int) -> None:
        for _ in range(ACCEPTS_PER_EVENT):
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in _NO_DESCRIPTORS:
                    raise
                self._pause_accepting(sock, error)
                return
            self._connected(connection, address)

    def _pause_accepting(self, sock: socket.socket, error: OSError) -> None:
        """Out of descriptors: free the longest-waiting connection, rest, report at most once
        per interval."""
        self._failed_accepts += 1
        self.table.close_longest_waiting()  # frees a descriptor if any connection waits
        self._report(f"accept() failed: {error.strerror}")
        fd = sock.fileno()
        if self._accepting.get(fd):
            io_loop = IOLoop.current()
            io_loop.remove_handler(sock)
            self._accepting[fd] = False
            io_loop.call_later(ACCEPT_PAUSE_S, self._resume_accepting, sock)

    def _resume_accepting(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if not self._stopped and fd in self._accepting and not self._accepting[fd]:
            IOLoop.current().add_handler(sock, functools.partial(self._accept_ready, sock),
                                         IOLoop.READ)
            self._accepting[fd] = True

    def _report(self, what: str) -> None:
        now = time.monotonic()
        if now - self._last_report >= LOG_INTERVAL_S:
            log.warning("%s; %d connections open (limit %d), %d refused and %d failed accepts "
                        "since the last report", what, len(self.table), self.max_connections,
                        self._refused, self._failed_accepts)
            self._last_report = now
            self._refused = self._failed_accepts = 0

    def _connected(self, connection: socket.socket, address: Any) -> None:
        peer = address[0] if isinstance(address, tuple) and address else ""
        trusted, group = self.proxies.trusts(peer), client_group(peer)
        refused_by = self.table.make_room(group, trusted)
        if refused_by is not None:
            self._refused += 1
            self._report(f"refusing connections ({refused_by}): all are busy with requests")
            self.lingering.close(connection, self._refusal(refused_by))
            return
        self._serve(connection, address, trusted, group)

    # Connections ---------------------------------------------------------------------------

    def _serve(self, connection: socket.socket, address: Any, trusted: bool,
               group: str) -> None:
        """Tornado's `handle_stream`, for a connection whose peer was judged on arrival."""
        stream = SentenceStream(connection, max_buffer_size=self.max_buffer_size,
                                read_chunk_size=self.read_chunk_size)
        IOStream.set_nodelay(stream, True)  # for good: SentenceStream.set_nodelay
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        server_conn = ServerConnection(stream, self.conn_params, context)
        self.table.add(Connection(server_conn, stream, trusted, group))
        self._connections.add(server_conn)
        server_conn.start_serving(self)

    def start_request(self, server_conn: object,
                      request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        assert isinstance(server_conn, HTTP1ServerConnection)
        connection = self.table.wait_for_request(server_conn, time.monotonic())
        return RequestGate(request_conn, self, server_conn, connection)

    def application_delegate(self, server_conn: HTTP1ServerConnection,
                             request_conn: httputil.HTTPConnection
                             ) -> httputil.HTTPMessageDelegate:
        assert isinstance(self.request_callback, httputil.HTTPServerConnectionDelegate)
        return self.request_callback.start_request(server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        assert isinstance(server_conn, HTTP1ServerConnection)
        self._connections.discard(server_conn)
        self.table.remove(server_conn)

    def request_started(self, server_conn: HTTP1ServerConnection) -> None:
        self.table.request_started(server_conn)


class RequestGate(httputil.HTTPMessageDelegate):
    """Stands between Tornado's connection and the application for one request: marks the
    connection busy, applies or removes proxy headers, keeps the sentence of a request
    Tornado refuses while building it, and hands the request to the fast path (fast_path.py)
    or to the Application."""

    __slots__ = ("connection", "delegate", "request_conn", "server", "server_conn", "xheaders")

    def __init__(self, request_conn: httputil.HTTPConnection, server: ProgressServer,
                 server_conn: HTTP1ServerConnection, connection: Connection | None) -> None:
        self.delegate: httputil.HTTPMessageDelegate | None = None
        self.request_conn = request_conn
        self.server = server
        self.server_conn = server_conn
        self.connection = connection
        self.xheaders = False

    def headers_received(self, start_line: Any,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        self.server.request_started(self.server_conn)
        if not PROXY_HEADERS.isdisjoint(headers):
            if self.connection is not None and self.connection.trusted:
                self.request_conn.context._apply_xheaders(headers)  # type: ignore[attr-defined]
                self.xheaders = True
            else:
                for name in PROXY_HEADERS:
                    headers.pop(name, None)
        length = headers.get("Content-Length")
        if length is not None and self.connection is not None and \
                _body_buffered(self.connection.stream, length):
            # The body came whole with the head: nothing left to wait for, so no timer.
            cast(Any, self.request_conn).set_body_timeout(None)
        fast = self.server.fast_path
        if fast is not None and isinstance(start_line, httputil.RequestStartLine):
            self.delegate = fast.delegate_for(start_line, headers, self.request_conn)
        if self.delegate is None:
            self.delegate = self.server.application_delegate(self.server_conn, self.request_conn)
        try:
            return self.delegate.headers_received(start_line, headers)
        except httputil.HTTPInputError as error:
            if self.connection is not None and isinstance(self.connection.stream,
                                                          SentenceStream):
                self.connection.stream.problem = _sentence(error)
            raise

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None  # headers come first
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()
        self._restore()

    def on_connection_close(self) -> None:
        if self.delegate is not None:  # else closed before its headers were read
            self.delegate.on_connection_close()
        self._restore()

    def _restore(self) -> None:
        if self.xheaders:
            self.request_conn.context._unapply_xheaders()  # type: ignore[attr-defined]
            self.xheaders = False


def _body_buffered(stream: IOStream, length: str) -> bool:
    """Whether the stream already holds a whole body of Content-Length `length`. How much it
    holds is Tornado's to know: read defensively, so that another Tornado keeps the timer."""
    held = getattr(stream, "_read_buffer_size", 0)
    return isinstance(held, int) and length.isdigit() and held >= int(length)


def _sentence(error: httputil.HTTPInputError) -> str:
    """Tornado's reason for refusing a request, as one sentence for the client."""
    reason = str(error)
    if "Host" in reason:
        return "the Host header is not a valid host name or address"
    if "argument" in reason.lower() or "field" in reason.lower():
        return f"the request has too many parameters ({reason}); send fewer"
    return f"{_MALFORMED.split(';')[0]}: {reason[:200]}; the connection is closed"


def serve(app: httputil.HTTPServerConnectionDelegate, settings: Settings,
          max_request_bytes: int) -> ProgressServer:
    """Starts listening on the settings' host and port, with the descriptor limit raised."""
    server = ProgressServer(app, settings, max_request_bytes)
    server.fit_to_descriptors(raise_descriptor_limit())
    server.listen(settings.port, settings.host)
    return server
