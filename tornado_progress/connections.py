"""The table of open connections and the rules that keep them bounded, for `server.py`.

- A connection waits at most `header_timeout` seconds for its first request's headers and
  `idle_timeout` for each later request's: the table knows since when each one waits, and
  `close_idle` closes the late ones, so that a request costs no timer of its own.
- At most `max_connections` in all and `max_per_address` from one client address (an IPv6
  client counts by its /64; trusted proxies, which carry many clients, are not limited here).
  At either cap the connection that has waited longest for its request's headers is closed to
  make room: a half-open attacker's, not a worker's whose request is being answered.
- An answer that a client does not read stops costing memory: a connection whose answer made
  no progress for `send_timeout` seconds is closed, and while the answers waiting for slow
  readers hold more than `unsent_budget` bytes, the longest stalled ones are closed first.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from tornado.http1connection import HTTP1ServerConnection
from tornado.iostream import IOStream


class Connection:
    """One open connection: its stream, where it comes from, and how its answer is going."""

    __slots__ = ("group", "sent", "served", "server_conn", "stalled_since", "stream",
                 "trusted", "waiting_since")

    def __init__(self, server_conn: HTTP1ServerConnection, stream: IOStream, trusted: bool,
                 group: str) -> None:
        self.server_conn = server_conn
        self.stream = stream
        self.trusted = trusted
        self.group = group
        self.sent = 0  # bytes of answers written to the socket when last looked at
        self.stalled_since: float | None = None
        self.waiting_since = 0.0  # when it began to wait for its next request's headers
        self.served = False  # a request began: the next ones wait the idle timeout


def progress(stream: IOStream) -> tuple[int, int]:
    """Bytes of answers written to the socket so far, and bytes the stream still holds.
    Tornado counts both without saying so publicly: read defensively, so that another Tornado
    costs the budget, not the server."""
    written = getattr(stream, "_total_write_index", 0)
    done = getattr(stream, "_total_write_done_index", 0)
    if not isinstance(written, int) or not isinstance(done, int):
        return 0, 0
    return done, max(0, written - done)


class ConnectionTable:
    """Open connections by Tornado's server connection, with the ones waiting for a request in
    the order they started waiting."""

    def __init__(self, max_connections: int, max_per_address: int, send_timeout: float,
                 unsent_budget: int, header_timeout: float = math.inf,
                 idle_timeout: float = math.inf) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.max_per_address = max_per_address
        self.send_timeout = send_timeout
        self.unsent_budget = unsent_budget
        self.open: dict[HTTP1ServerConnection, Connection] = {}
        self.waiting: OrderedDict[HTTP1ServerConnection, Connection] = OrderedDict()
        # Connections with a request under way: the only ones with answers to watch.
        self._busy: dict[HTTP1ServerConnection, Connection] = {}
        self._per_group: dict[str, int] = {}
        self.closed_slow = 0
        self.closed_idle = 0

    def __len__(self) -> int:
        return len(self.open)

    @property
    def busy(self) -> int:
        """Connections with a request under way (parked polls included)."""
        return len(self._busy)

    def make_room(self, group: str, trusted: bool) -> str | None:
        """Room for a new connection from `group`, made by closing a waiting one if need be;
        None when there is room, else the option whose limit refuses it."""
        if (not trusted and self._per_group.get(group, 0) >= self.max_per_address
                and not self.close_longest_waiting(group)):
            return "--max-connections-per-address"
        if len(self.open) >= self.max_connections and not self.close_longest_waiting():
            return "--max-connections"
        return None

    def add(self, connection: Connection) -> None:
        self.open[connection.server_conn] = connection
        if not connection.trusted:
            self._per_group[connection.group] = self._per_group.get(connection.group, 0) + 1

    def remove(self, server_conn: HTTP1ServerConnection) -> Connection | None:
        self.waiting.pop(server_conn, None)
        self._busy.pop(server_conn, None)
        connection = self.open.pop(server_conn, None)
        if connection is not None and not connection.trusted:
            left = self._per_group[connection.group] - 1
            if left:
                self._per_group[connection.group] = left
            else:
                del self._per_group[connection.group]
        return connection

    def wait_for_request(self, server_conn: HTTP1ServerConnection,
                         now: float) -> Connection | None:
        connection = self.open.get(server_conn)
        if connection is not None:
            connection.waiting_since = now
            # Last in the order of waiting, which `close_idle` relies on.
            self.waiting.pop(server_conn, None)
            self.waiting[server_conn] = connection
            self._busy.pop(server_conn, None)
        return connection

    def request_started(self, server_conn: HTTP1ServerConnection) -> None:
        connection = self.waiting.pop(server_conn, None)
        if connection is not None:
            connection.served = True
            self._busy[server_conn] = connection

    def close_idle(self, now: float) -> None:
        """Closes the connections that waited for a request's headers longer than allowed:
        `header_timeout` for a connection's first request, `idle_timeout` for later ones."""
        shortest = min(self.header_timeout, self.idle_timeout)
        late = []
        for server_conn, connection in self.waiting.items():
            waited = now - connection.waiting_since
            if waited < shortest:
                break  # the rest began to wait later still
            if waited >= (self.idle_timeout if connection.served else self.header_timeout):
                late.append(server_conn)
        for server_conn in late:
            self.closed_idle += 1
            self.close(server_conn)

    def close_longest_waiting(self, group: str | None = None) -> bool:
        for server_conn, connection in self.waiting.items():
            if group is None or connection.group == group:
                self.close(server_conn)
                return True
        return False

    def close(self, server_conn: HTTP1ServerConnection) -> None:
        connection = self.remove(server_conn)
        if connection is not None:
            connection.stream.close()

    def sweep(self, now: float) -> None:
        """Closes the connections whose answers stalled past `send_timeout`, then, while the
        unsent answers hold more than `unsent_budget` bytes, the longest stalled ones."""
        stalled: list[tuple[float, int, Connection]] = []
        unsent_total = 0
        for connection in list(self._busy.values()):
            sent, unsent = progress(connection.stream)
            if not unsent or sent != connection.sent:
                connection.sent = sent
                connection.stalled_since = now if unsent else None
                unsent_total += unsent
                continue
            since = connection.stalled_since if connection.stalled_since is not None else now
            connection.stalled_since = since
            if now - since > self.send_timeout:
                self._close_slow(connection)
            else:
                stalled.append((since, unsent, connection))
                unsent_total += unsent
        for _, unsent, connection in sorted(stalled, key=_oldest_first):
            if unsent_total <= self.unsent_budget:
                break
            self._close_slow(connection)
            unsent_total -= unsent

    def _close_slow(self, connection: Connection) -> None:
        self.closed_slow += 1
        self.close(connection.server_conn)


def _oldest_first(entry: tuple[float, int, Any]) -> float:
    return entry[0]
