"""The access log's line for an answer, whichever path served it: Tornado's format, with a
long request line cut and secrets blanked, at a level by status (4xx warning, 5xx error)."""

from __future__ import annotations

import re

from tornado.log import access_log

# Characters of a request line kept in the access log: a refused megabyte must not land whole.
LOGGED_URI_CHARS = 200
# Parameters whose values never reach the log: whoever reads it must not gain write access.
_SECRET = re.compile(r"(?<=[?&])(token|key)=[^&]*")


def log_answer(status: int, method: str, uri: str, remote_ip: str, seconds: float) -> None:
    write = (access_log.info if status < 400 else
             access_log.warning if status < 500 else access_log.error)
    uri = _SECRET.sub(r"\1=***", uri)
    if len(uri) > LOGGED_URI_CHARS:
        uri = f"{uri[:LOGGED_URI_CHARS]}... ({len(uri)} characters)"
    write("%d %s %s (%s) %.2fms", status, method, uri, remote_ip, 1000.0 * seconds)
