"""The one factory that wires a server together, shared by `main()` and the tests."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tornado import web

from . import handlers, pages, palette, render_handler
from .config import Settings
from .longpoll import Waiters
from .model import Store
from .snapshots import Snapshotter


def resource_dir(name: str) -> Path:
    """`templates/` or `static/`: beside the package in a checkout, under share/ when installed
    from a wheel."""
    beside = Path(__file__).resolve().parent.parent / name
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "tornado_progress" / name


def make_app(store: Store, waiters: Waiters, snapshotter: Snapshotter,
             settings: Settings, renderer: render_handler.ChartRenderer | None = None,
             **tornado_settings: Any) -> web.Application:
    store.on_change = waiters.wake
    deps = {"store": store, "waiters": waiters, "snapshotter": snapshotter,
            "renderer": renderer or render_handler.ChartRenderer(), "settings": settings,
            "started": time.monotonic()}
    routes: list[tuple[str, type[web.RequestHandler]]] = [
        ("create", handlers.CreateHandler),
        ("update", handlers.UpdateHandler),
        ("delete", handlers.DeleteHandler),
        ("status", handlers.StatusHandler),
        ("poll", handlers.PollHandler),
        ("health", handlers.HealthHandler),
        ("show", pages.ShowHandler),
        ("render", render_handler.RenderHandler),
    ]
    return web.Application(
        [(rf"/progress/{name}", handler, deps) for name, handler in routes],
        template_path=str(resource_dir("templates")),
        static_path=str(resource_dir("static")),
        static_url_prefix="/progress/static/",
        default_handler_class=handlers.NotFoundHandler,
        default_handler_args=deps,
        ui_methods={"palette_css": lambda handler: palette.css_variables()},
        **tornado_settings,
    )
