"""`digest serve`: the static archive and live previews over HTTP, on 127.0.0.1 by default.

    GET /preview?keywords=a,b[&exclude=c][&format=html|markdown|text][&limit=N]
    GET /confirm?token=T            double opt-in: confirms and says so
    GET /unsubscribe?token=T        a page with one button (mail scanners follow GETs)
    POST /unsubscribe?token=T       RFC 8058 one-click: 200, takes effect at once
    GET /manage?token=T             the subscriber's profiles and an unsubscribe button
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

from digest import pipeline, rank, subscriptions
from digest.config import Config
from digest.errors import DigestError
from digest.links import link
from digest.model import Subscriber
from digest.store import Store
from digest.tokens import load_secret, parse_token, verify

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
        query = parse_qs(url.query)
        if url.path == "/preview":
            self._preview(query)
        elif url.path in ("/confirm", "/unsubscribe", "/manage"):
            self._subscription(query, url.path[1:], act=False)
        else:
            super().do_GET()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = self.headers.get("Content-Length") or "0"
        if length.isascii() and length.isdigit() and int(length) > 0:
            self.rfile.read(min(int(length), 65536))  # RFC 8058: List-Unsubscribe=One-Click
        if url.path in ("/unsubscribe", "/confirm"):
            self._subscription(parse_qs(url.query), url.path[1:])
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/html", _page("Not found", "Nothing here."))

    def _subscription(self, query: dict[str, list[str]], action: str, *, act: bool = True) -> None:
        token = query.get("token", [""])[0]
        now = self.clock()
        try:
            with Store(self.store_path) as store:
                if act and action == "confirm":
                    sub = subscriptions.confirm(self.config, store, token, now)
                    body = _page("Subscribed", f"{sub.email} will get the papers-digest.")
                elif act:
                    sub, _ = subscriptions.unsubscribe(self.config, store, token, now)
                    body = _page("Unsubscribed", f"{sub.email} will get no more digests.")
                else:  # GET: check the token, show the page; nothing changes
                    claim = parse_token(token, action)
                    found = store.subscriber(claim.subscriber_id)
                    if found is None:
                        raise DigestError(f"{action} token is not valid (no such subscriber)")
                    verify(load_secret(self.config), claim, found.email, now)
                    body = (
                        _manage_page(found, token, self.config, now)
                        if action == "manage"
                        else _button_page(action, found.email, token)
                    )
        except DigestError as exc:
            self._send(HTTPStatus.BAD_REQUEST, "text/html", _error_page(str(exc)))
            return
        self._send(HTTPStatus.OK, "text/html", body)

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
            )
            now = self.clock()
            window = pipeline.recent_window(now)  # what a new reader's first digest holds
            with Store(self.store_path) as store:
                _, body = pipeline.preview(self.config, store, profile, now, fmt, window)
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


def _page(title: str, message: str, extra: str = "") -> str:
    return (
        "<!doctype html><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        "<body style='font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;"
        f"padding:0 1rem'><h1>{escape(title)}</h1><p>{escape(message)}</p>{extra}</body>"
    )


def _button_page(action: str, email: str, token: str) -> str:
    """GET shows one button; only the POST acts (mail scanners follow links, not forms)."""
    if action == "confirm":
        title, text, label = "Confirm?", f"Send the papers-digest to {email}?", "Confirm"
    else:
        title, text = "Unsubscribe?", f"Stop sending the papers-digest to {email}?"
        label = "Unsubscribe"
    form = (
        f'<form method="post" action="{action}?token={escape(token)}">'
        f'<button type="submit">{label}</button></form>'
    )
    return _page(title, text, form)


def _manage_page(sub: Subscriber, token: str, config: Config, now: datetime) -> str:
    profiles = ""
    for p in sub.profiles:
        keywords, exclude = rank.profile_text(p)
        profiles += f"<li><strong>{escape(p.name)}</strong>: {escape(', '.join(keywords))}"
        profiles += (f" (not: {escape(', '.join(exclude))})" if exclude else "") + "</li>"
    unsub = link(config, load_secret(config), "unsubscribe", sub, now)
    extra = (
        f"<ul>{profiles}</ul><p>Change them with <code>digest subscribe</code>, or "
        f'<a href="{escape(unsub)}">unsubscribe</a>.</p>'
    )
    return _page("Your papers-digest", f"{sub.email} gets these profiles:", extra)


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


def serve_in_thread(server: ThreadingHTTPServer, poll_interval: float = 0.02) -> threading.Thread:
    """Run `server` in a daemon thread (tests); stop it with `server.shutdown()`, which
    returns within `poll_interval` seconds (the stdlib's default, 0.5 s, is for a CLI)."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
    )
    thread.start()
    return thread
