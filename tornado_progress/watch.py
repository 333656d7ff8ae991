"""`tornado-progress watch URL`: a live view of a job in the terminal, with the standard library
only (it imports neither Tornado nor cairo), from any machine that can reach the server.

It follows the server's `text` view (`follow=1`), sized to the terminal and coloured when the
output is one, and starts following again when the server ends the answer (its timeout) or
goes away for a while (a restart), until the job is deleted or Ctrl-C.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import urllib.error
import urllib.request
from typing import BinaryIO
from urllib.parse import parse_qs, quote, urlsplit

RETRY_MIN_S = 1.0
RETRY_MAX_S = 15.0
READ_TIMEOUT_S = 30.0  # the server draws again at least every 10 s


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tornado-progress watch",
        description="Follow a job in the terminal. URL is the job's page "
                    "(http://host:8000/progress/show?jobid=J), or the server's address with "
                    "--jobid.")
    parser.add_argument("url", help="the job's show, status or text URL, or the server's")
    parser.add_argument("--jobid", help="the job, when the URL does not name it")
    parser.add_argument("--width", type=int, default=0,
                        help="columns (default: the terminal's)")
    parser.add_argument("--color", action=argparse.BooleanOptionalAction, default=None,
                        help="ANSI colours (default: when the output is a terminal)")
    return parser.parse_args(argv)


def text_url(url: str, jobid: str | None, width: int, color: bool) -> str:
    """The `text?...&follow=1` URL of the job that `url` (and `jobid`) name."""
    parts = urlsplit(url)
    named = parse_qs(parts.query).get("jobid", [None])[-1]
    job = jobid or named
    if not job:
        raise SystemExit("watch: say which job: a URL with ?jobid=..., or --jobid")
    path = parts.path
    prefix = path[:path.index("/progress/")] if "/progress/" in path else path.rstrip("/")
    return (f"{parts.scheme}://{parts.netloc}{prefix}/progress/text?jobid={quote(job, safe='')}"
            f"&follow=1&width={width}&color={int(color)}")


def copy(response: BinaryIO, out: BinaryIO) -> None:
    while chunk := response.read1(65536):  # type: ignore[attr-defined]
        out.write(chunk)
        out.flush()


def watch(url: str, out: BinaryIO) -> int:
    """Follows until the job is gone (1) or the user stops it (0)."""
    delay = RETRY_MIN_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=READ_TIMEOUT_S) as response:
                delay = RETRY_MIN_S
                copy(response, out)
        except urllib.error.HTTPError as error:
            with error:
                if error.code == 404:
                    sys.stderr.write(f"watch: {error.read().decode(errors='replace')}")
                    return 1
                problem = f"the server answered {error.code}"
        except OSError as error:  # URLError too
            problem = f"cannot reach the server ({error})"
        else:
            continue  # the server ended the answer (its timeout): follow again at once
        sys.stderr.write(f"watch: {problem}; trying again in {delay:.0f} s\n")
        time.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    width = args.width or shutil.get_terminal_size().columns
    color = sys.stdout.isatty() if args.color is None else args.color
    try:
        return watch(text_url(args.url, args.jobid, max(20, width), color), sys.stdout.buffer)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
