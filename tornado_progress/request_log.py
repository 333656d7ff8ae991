"""The access log's line for an answer, whichever path served it: Tornado's format, with a
long request line cut and secrets blanked, at a level by status (4xx warning, 5xx error)."""

from __future__ import annotations

import logging
import re

from tornado.log import access_log

# Characters of a request line kept in the access log: a refused megabyte must not land whole.
LOGGED_URI_CHARS = 200
# Parameters whose values never reach the log: whoever reads it must not gain write access.
_SECRET = re.compile(r"(?<=[?&])(token|key)=[^&]*")


def log_answer(status: int, method: str, uri: str, remote_ip: str, seconds: float) -> None:
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not access_log.isEnabledFor(level):
        return  # the usual case for a 200 without --access-log: nothing to format
    uri = _SECRET.sub(r"\1=***", uri)
    if len(uri) > LOGGED_URI_CHARS:
        uri = f"{uri[:LOGGED_URI_CHARS]}... ({len(uri)} characters)"
    access_log.log(level, "%d %s %s (%s) %.2fms", status, method, uri, remote_ip,
                   1000.0 * seconds)
