"""The connection table alone (connections.py): caps in all and per address, who is closed to
make room, and which stalled answers are dropped, with fake streams and a clock by hand."""

from __future__ import annotations

from typing import Any, cast

from tornado.http1connection import HTTP1ServerConnection
from tornado.iostream import IOStream

from tornado_progress.access import client_group
from tornado_progress.connections import Connection, ConnectionTable


class FakeStream:
    def __init__(self) -> None:
        self._total_write_index = 0
        self._total_write_done_index = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True


def connect(table: ConnectionTable, group: str = "10.0.0.1", trusted: bool = False,
            busy: bool = False) -> tuple[Any, FakeStream]:
    key = cast(HTTP1ServerConnection, object())
    stream = FakeStream()
    table.add(Connection(key, cast(IOStream, stream), trusted, group))
    table.wait_for_request(key, 0.0)
    if busy:
        table.request_started(key)
    return key, stream


def test_at_the_cap_the_longest_waiting_connection_makes_room() -> None:
    table = ConnectionTable(3, 100, 30, 1 << 20)
    first, first_stream = connect(table)
    _, second_stream = connect(table)
    connect(table, busy=True)
    assert table.make_room("10.0.0.9", trusted=False) is None
    assert first_stream.closed and first not in table.open and not second_stream.closed
    connect(table, busy=True)
    assert table.make_room("10.0.0.9", trusted=False) is None  # the second one goes
    connect(table, busy=True)
    assert table.busy == 3
    assert table.make_room("10.0.0.9", trusted=False) == "--max-connections"


def test_one_address_makes_room_from_its_own_connections() -> None:
    table = ConnectionTable(100, 2, 30, 1 << 20)
    other, other_stream = connect(table, group="10.0.0.2")
    mine, my_stream = connect(table)
    connect(table, busy=True)
    assert table.make_room("10.0.0.1", trusted=False) is None
    assert my_stream.closed and not other_stream.closed
    connect(table, busy=True)
    assert table.make_room("10.0.0.1", trusted=False) == "--max-connections-per-address"
    assert table.make_room("10.0.0.1", trusted=True) is None  # a proxy carries many clients
    assert other in table.open and mine not in table.open


def test_answers_stalled_past_the_send_timeout_are_dropped() -> None:
    table = ConnectionTable(100, 100, send_timeout=30, unsent_budget=1 << 30)
    _, reading = connect(table, busy=True)
    _, stalled = connect(table, busy=True)
    for stream in (reading, stalled):
        stream._total_write_index = 1000
    table.sweep(0.0)
    reading._total_write_done_index = 500  # the client reads on
    table.sweep(29.0)
    reading._total_write_done_index = 900
    table.sweep(31.0)
    assert stalled.closed and not reading.closed
    assert table.closed_slow == 1


def test_past_the_unsent_budget_the_longest_stalled_go_first() -> None:
    table = ConnectionTable(100, 100, send_timeout=300, unsent_budget=2500)
    streams = []
    for moment in range(4):
        _, stream = connect(table, busy=True)
        stream._total_write_index = 1000
        table.sweep(float(moment))
        streams.append(stream)
    table.sweep(10.0)
    assert [stream.closed for stream in streams] == [True, True, False, False]


def test_a_connection_waits_the_header_timeout_first_then_the_idle_one() -> None:
    table = ConnectionTable(100, 100, 30, 1 << 20, header_timeout=10, idle_timeout=60)
    new, new_stream = connect(table)  # waits for its first request since 0
    kept, kept_stream = connect(table)
    table.request_started(kept)
    table.wait_for_request(kept, 5.0)  # answered; waits for its next request since 5
    _, busy_stream = connect(table, busy=True)  # a request under way: no header timeout
    streams = (new_stream, kept_stream, busy_stream)
    for now, closed in ((9.9, [False, False, False]), (10.0, [True, False, False]),
                        (64.9, [True, False, False]), (65.0, [True, True, False])):
        table.close_idle(now)
        assert [stream.closed for stream in streams] == closed
    assert new not in table.open and kept not in table.open
    assert table.closed_idle == 2 and len(table) == 1


def test_an_ipv6_client_counts_by_its_64() -> None:
    assert client_group("2001:db8:1:2:aaaa::1") == client_group("2001:db8:1:2:bbbb::2")
    assert client_group("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_group("2001:db8:1:3::1") != client_group("2001:db8:1:2::1")
    assert client_group("::ffff:10.0.0.1") == "10.0.0.1"
    assert client_group("10.0.0.1") == "10.0.0.1"
    assert client_group("") == ""
