"""The framework's floor: a bare Tornado handler on /progress/update that only answers "OK".

Run: `python -m bench.bare_server --port P`

Same Tornado, same HTTPServer options and the same logging level as the product, no work: what
one request costs this design before the service does anything.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from tornado import web
from tornado.httpserver import HTTPServer


class BareHandler(web.RequestHandler):
    def get(self) -> None:
        self.finish("OK")

    def post(self) -> None:
        self.finish("OK")


async def serve(host: str, port: int) -> None:
    app = web.Application([(r"/progress/update", BareHandler)])
    HTTPServer(app, xheaders=True, max_body_size=64 * 1024).listen(port, host)
    await asyncio.Event().wait()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    run()
