"""The one factory that wires a server together, shared by `main()` and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tornado import web

from . import (
    handlers,
    home,
    metrics_handler,
    pages,
    palette,
    render_handler,
    request_log,
    text_handler,
    views,
)
from .answer_cache import AnswerCache
from .bodies import BodyBuilder
from .config import Settings
from .fast_path import FastPath
from .longpoll import Waiters
from .metrics import Counters
from .model import Store
from .notify import Notifier
from .snapshots import Snapshotter


def resource_dir(name: str) -> Path:
    """`templates/` or `static/`: inside the package when installed from a wheel, else at the
    top of the checkout beside it."""
    package = Path(__file__).resolve().parent
    inside = package / name
    return inside if inside.is_dir() else package.parent / name


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access-log line, as request_log writes it for every path."""
    request = handler.request
    request_log.log_answer(handler.get_status(), request.method or "", request.uri or "",
                           request.remote_ip or "", request.request_time())


class StaticFiles(web.StaticFileHandler):
    """static/, with a path no file can have (a NUL, say) answered 404 with a sentence instead
    of the 500 that the file system's ValueError would give."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if "\x00" in absolute_path:
            raise web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", handlers.JSON_TYPE)
        self.finish(views.encode({"error": f"there is no static file {self.request.path!r}"
                                  if status_code == 404 else self._reason}))


def both(first: Callable[[str], None], second: Callable[[str], None]) -> Callable[[str], None]:
    """The store's change hook when two want it (viewers and notifications)."""
    def changed(key: str) -> None:
        first(key)
        second(key)
    return changed


def make_app(store: Store, waiters: Waiters, snapshotter: Snapshotter,
             settings: Settings, renderer: render_handler.ChartRenderer | None = None,
             answers: AnswerCache | None = None, bodies: BodyBuilder | None = None,
             counters: Counters | None = None, notifier: Notifier | None = None,
             **tornado_settings: Any) -> web.Application:
    store.on_change = waiters.wake if notifier is None else both(waiters.wake, notifier.changed)
    # `is None`, never `or`: an empty cache is falsy (it has a length).
    answers = AnswerCache(settings.cache_bytes) if answers is None else answers
    bodies = BodyBuilder(answers, settings.stale_after) if bodies is None else bodies
    counters = Counters() if counters is None else counters
    deps = {"store": store, "waiters": waiters, "snapshotter": snapshotter,
            "counters": counters, "renderer": renderer or render_handler.ChartRenderer(),
            "answers": answers, "bodies": bodies, "settings": settings,
            "started": time.monotonic()}
    routes: list[tuple[str, type[web.RequestHandler]]] = [
        ("create", handlers.CreateHandler),
        ("update", handlers.UpdateHandler),
        ("updates", handlers.UpdatesHandler),
        ("delete", handlers.DeleteHandler),
        ("status", handlers.StatusHandler),
        ("poll", handlers.PollHandler),
        ("health", handlers.HealthHandler),
        ("show", pages.ShowHandler),
        ("render", render_handler.RenderHandler),
        ("text", text_handler.TextHandler),
        ("jobs", home.JobsHandler),
        ("metrics", metrics_handler.MetricsHandler),
        ("", home.HomeHandler),
    ]
    fast = FastPath(store, waiters, bodies, settings, counters)
    return web.Application(
        [(rf"/progress/{name}", handler, {**deps, "endpoint": name or "home"})
         for name, handler in routes]
        + [("/", home.RootRedirect, deps)],
        template_path=str(resource_dir("templates")),
        static_path=str(resource_dir("static")),
        static_url_prefix="/progress/static/",
        static_handler_class=StaticFiles,
        default_handler_class=handlers.NotFoundHandler,
        default_handler_args=deps,
        ui_methods={"palette_css": lambda handler: palette.css_variables()},
        fast_path=fast if settings.fast_path else None,
        **{"log_function": log_request, **tornado_settings},
    )
