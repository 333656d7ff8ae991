"""The framework's floors on /progress/update, each answering only "OK":

- a bare Tornado `RequestHandler` in an `Application` (the default), what one request costs
  this design before the service does anything;
- with `--raw`, the raw-delegate floor: a minimal `HTTPServerConnectionDelegate` whose
  `HTTPMessageDelegate` writes "OK" at Tornado's HTTP layer, no Application, no routing, no
  RequestHandler: what one request costs Tornado's HTTPServer and HTTP1Connection alone, the
  layer the product's fast path answers `update`, `updates` and `poll` at.

Run: `python -m bench.bare_server --port P [--raw]`

Same Tornado, same HTTPServer options and the same logging level for both, no work.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from tornado import httputil, web
from tornado.httpserver import HTTPServer

OK = b"OK"


class BareHandler(web.RequestHandler):
    def get(self) -> None:
        self.finish("OK")

    def post(self) -> None:
        self.finish("OK")


class RawAnswer(httputil.HTTPMessageDelegate):
    """One request: whatever it was, once it is read, "OK"."""

    def __init__(self, request_conn: httputil.HTTPConnection) -> None:
        self.request_conn = request_conn

    def finish(self) -> None:
        headers = httputil.HTTPHeaders({"Content-Type": "text/html; charset=UTF-8",
                                        "Content-Length": str(len(OK))})
        self.request_conn.write_headers(httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
                                        headers, OK)
        self.request_conn.finish()


class RawDelegate(httputil.HTTPServerConnectionDelegate):
    def start_request(self, server_conn: object,
                      request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        return RawAnswer(request_conn)


async def serve(host: str, port: int, raw: bool) -> None:
    app: httputil.HTTPServerConnectionDelegate = (
        RawDelegate() if raw else web.Application([(r"/progress/update", BareHandler)]))
    HTTPServer(app, xheaders=True, max_body_size=64 * 1024).listen(port, host)
    await asyncio.Event().wait()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--raw", action="store_true",
                        help="the raw-delegate floor instead of the RequestHandler one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.host, args.port, args.raw))


if __name__ == "__main__":
    run()
