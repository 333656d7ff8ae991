"""A request's header lines parsed in one step when they are plainly well-formed, for the
server's connections (server.py); any other head is Tornado's to parse, and to refuse.

Tornado checks each header line on its own, a regular expression for its name and one for its
value, and its headers look a missing header up through a KeyError raised and caught (for
Connection and Expect in every request). Here a head whose lines are all `Name: value` CRLF
lines, names being tokens, values printable ASCII words (no blank after the last), and no name
twice, matches one expression and gives the very headers Tornado's parser gives; a head with
anything else in it (other bytes, bare LF, repeated or malformed lines) goes to Tornado's
parser unchanged, which refuses what it refuses. The request line stays Tornado's to parse.
"""

from __future__ import annotations

import asyncio
import re

from tornado import httputil, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.log import gen_log

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A value: visible ASCII words between spaces, after optional blanks (which Tornado strips).
# Blanks after the value are left to Tornado's parser: no two parts of the expression can take
# the same characters, so that any line costs linear time.
_VALUE = r"[\x21-\x7e]+(?: +[\x21-\x7e]+)*"
_LINE = rf"({_TOKEN}):[ \t]*({_VALUE})?\r\n"
_LINES = re.compile(_LINE)
# The header lines as _parse_headers gets them: from the request line's LF to the blank line.
_BLOCK = re.compile(rf"\n(?:{_LINE})*\r\n")


class Headers(httputil.HTTPHeaders):
    """Tornado's HTTPHeaders, whose `get` of a header the request lacks raises nothing."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self[name] if name in self else default  # noqa: SIM401 (it is `get`)


def parse_header_lines(lines: str) -> httputil.HTTPHeaders:
    """The headers of `lines` (from the LF that ends the request line to the blank line, as
    latin-1 text), as `HTTPHeaders.parse(lines)` gives them, and its errors."""
    if _BLOCK.fullmatch(lines) is None:
        return Headers.parse(lines)
    headers = Headers()
    for name, value in _LINES.findall(lines):
        if name in headers:  # a repeated header: Tornado's add() keeps both
            return Headers.parse(lines)
        headers[name] = value
    return headers


class HeadConnection(HTTP1Connection):
    """Tornado's HTTP1Connection, with parse_header_lines for its header lines."""

    def _parse_headers(self, data: bytes) -> tuple[str, httputil.HTTPHeaders]:
        # As Tornado's own: leading blank lines skipped, the first line the request line.
        text = data.decode("latin1").lstrip("\r\n")
        eol = text.find("\n")
        return text[:eol].rstrip("\r"), parse_header_lines(text[eol:])


class ServerConnection(HTTP1ServerConnection):
    """Tornado's HTTP1ServerConnection, serving its requests with HeadConnection."""

    async def _server_request_loop(self, delegate: httputil.HTTPServerConnectionDelegate
                                   ) -> None:
        # Tornado's own loop, line for line, but for the connection class it makes.
        try:
            while True:
                conn = HeadConnection(self.stream, False, self.params, self.context)
                request_delegate = delegate.start_request(self, conn)
                try:
                    ret = await conn.read_response(request_delegate)
                except (iostream.StreamClosedError, iostream.UnsatisfiableReadError,
                        asyncio.CancelledError):
                    return
                except Exception:
                    gen_log.error("Uncaught exception", exc_info=True)
                    conn.close()
                    return
                if not ret:
                    return
                await asyncio.sleep(0)
        finally:
            delegate.on_close(self)
