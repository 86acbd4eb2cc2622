"""`digest serve`: the static archive and live previews over HTTP, on 127.0.0.1 by default.

    GET /preview?keywords=a,b[&exclude=c][&format=html|markdown|text][&limit=N]
    GET /<path>     files of the published archive (site/ by default)

Each request opens its own store connection (SQLite objects stay in their thread).
Bad input (no keywords, a bad limit) gets a 400 page that says what to fix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from markupsafe import escape

from digest import pipeline, rank
from digest.config import Config
from digest.errors import DigestError
from digest.store import Store

_TYPES = {"html": "text/html", "markdown": "text/markdown", "text": "text/plain"}


class _Handler(SimpleHTTPRequestHandler):
    config: Config
    store_path: Path
    clock: Callable[[], datetime]

    def log_message(self, format: str, *args: object) -> None:  # quiet: one line per request
        if self.server.verbose:  # type: ignore[attr-defined]
            super().log_message(format, *args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/preview":
            self._preview(parse_qs(url.query))
        else:
            super().do_GET()

    def _preview(self, query: dict[str, list[str]]) -> None:
        fmt = query.get("format", ["html"])[0]
        keywords = query.get("keywords", [])
        try:
            if fmt not in _TYPES:
                raise DigestError(f"format {fmt!r}: use html, markdown or text")
            limit = int(query.get("limit", ["0"])[0] or 0)
            profile = rank.make_profile(
                "preview",
                keywords,
                query.get("exclude", []),
                max_items=limit or None,
                defaults=pipeline.rank_settings(self.config),
            )
            with Store(self.store_path) as store:
                _, body = pipeline.preview(self.config, store, profile, self.clock(), fmt)
        except (DigestError, ValueError) as exc:
            message = str(exc) if isinstance(exc, DigestError) else "limit must be a number"
            self._send(HTTPStatus.BAD_REQUEST, "text/html", _error_page(message))
            return
        self._send(HTTPStatus.OK, _TYPES[fmt], body)

    def _send(self, status: HTTPStatus, kind: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; style-src 'unsafe-inline'; script-src 'self'",
        )
        self.end_headers()
        self.wfile.write(data)


def _error_page(message: str) -> str:
    return (
        "<!doctype html><meta charset=utf-8><title>Bad request</title>"
        f"<h1>Bad request</h1><p>{escape(message)}</p>"
        "<p>Try <code>/preview?keywords=LoRA,quantization</code></p>"
    )


def make_server(
    config: Config,
    store_path: Path,
    clock: Callable[[], datetime],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    site_dir: Path | None = None,
    verbose: bool = False,
) -> ThreadingHTTPServer:
    """A ready server (call `serve_forever`); port 0 picks a free port."""
    directory = site_dir or config.publish.dir
    directory.mkdir(parents=True, exist_ok=True)
    handler = type(
        "Handler",
        (_Handler,),
        {"config": config, "store_path": store_path, "clock": staticmethod(clock)},
    )
    server = ThreadingHTTPServer((host, port), partial(handler, directory=str(directory)))
    server.verbose = verbose  # type: ignore[attr-defined]
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Run `server` in a daemon thread (tests); stop it with `server.shutdown()`."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
