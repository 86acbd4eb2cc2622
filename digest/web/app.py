"""The Starlette application: routes, the token pages (confirm, unsubscribe) and the
live preview; subscribe and manage have modules of their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from digest import pipeline, rank, subscriptions
from digest.config import Config
from digest.deliver import Backend
from digest.errors import DigestError
from digest.render.environment import builtin_templates
from digest.store import Store
from digest.store.base import DEFAULT_TIMEOUT
from digest.web import manage, rate, subscribe
from digest.web.files import SiteFiles
from digest.web.guard import GuardMiddleware
from digest.web.pages import UNSUBSCRIBE_WAIT, Site, StoreUnavailable

#: The most items `/preview?limit=` may ask for (an overflow is refused, not converted).
MAX_PREVIEW_LIMIT = 1000
_TYPES = {"html": "text/html", "markdown": "text/markdown", "text": "text/plain"}


def make_app(
    config: Config,
    store_path: Path | str,
    clock: Callable[[], datetime],
    *,
    site_dir: Path,
    log: Callable[[str], None] | None = None,
    open_backend: Callable[[], Backend] | None = None,
    unsubscribe_wait: float = UNSUBSCRIBE_WAIT,
    security_headers: bool = True,
) -> ASGIApp:
    """The reader pages and the archive under `site_dir`, behind the guard middleware.

    `security_headers`: the guard adds them to each answer; False where the server adds
    them itself (digest.serve does, so that its own errors carry them too).

    `unsubscribe_wait`: seconds a one-click unsubscribe waits for a busy store before it
    is queued beside the store (202) instead.
    """
    site = Site(config, store_path, clock, open_backend, log=log, unsubscribe_wait=unsubscribe_wait)

    async def preview(request: Request) -> Response:
        return await _preview(site, request)

    async def confirm(request: Request) -> Response:
        return await _token_page(site, request, "confirm")

    async def unsubscribe(request: Request) -> Response:
        return await _token_page(site, request, "unsubscribe")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return site.message(request, "Not allowed", "This page does not take that.", 405)
        return site.message(request, "Not found", "Nothing here.", 404 if status == 404 else status)

    async def unavailable(request: Request, exc: Exception) -> Response:
        response = site.message(
            request,
            "Try again in a minute",
            "The server cannot answer that just now; nothing was changed. Please try again.",
            503,
        )
        response.headers["retry-after"] = "60"
        return response

    static = builtin_templates() / "web" / "static"
    routes = [
        Route("/preview", preview),
        Route("/confirm", confirm, methods=["GET", "POST"]),
        Route("/unsubscribe", unsubscribe, methods=["GET", "POST"]),
        Route("/manage", manage.handler(site), methods=["GET", "POST"]),
        Route("/rate", rate.handler(site), methods=["GET", "POST"]),
        Route("/subscribe", subscribe.handler(site), methods=["GET", "POST"]),
        Route("/subscribe/preview", subscribe.preview_handler(site)),
        Mount("/_web", StaticFiles(directory=static)),
        Mount("/", SiteFiles(directory=site_dir, html=True, check_dir=False)),
    ]
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: not_found, StoreUnavailable: unavailable}
    )
    return GuardMiddleware(app, log=log, security_headers=security_headers)


async def _preview(site: Site, request: Request) -> Response:
    refused = site.preview_refusal(request)
    if refused is not None:
        status, why = refused
        return site.message(request, "Not now", why, status, link="/", link_text="The archive")
    query = request.query_params
    fmt = query.get("format", "html")
    try:
        if fmt not in _TYPES:
            raise DigestError(f"format {fmt!r}: use html, markdown or text")
        text = query.get("limit") or "0"
        if not (text.isascii() and text.isdigit()):
            raise DigestError("limit must be a number")
        limit = int(text) if len(text) <= 6 else MAX_PREVIEW_LIMIT + 1
        if limit > MAX_PREVIEW_LIMIT:
            raise DigestError(f"limit must be at most {MAX_PREVIEW_LIMIT}")
        profile = rank.make_profile(
            "preview", query.getlist("keywords"), query.getlist("exclude"), max_items=limit or None
        )
        now = site.clock()
        window = pipeline.recent_window(now)  # what a new reader's first digest holds

        def render(store: Store) -> str:
            return pipeline.preview(
                site.config, store, profile, now, fmt, window, keep_keywords=False
            )[1]

        body = await site.run_preview(render)
    except DigestError as exc:
        return site.message(
            request,
            "Bad request",
            str(exc),
            400,
            link="/preview?keywords=LoRA,quantization",
            link_text="Try /preview?keywords=LoRA,quantization",
        )
    return Response(body, media_type=_TYPES[fmt])


async def _token_page(site: Site, request: Request, action: str) -> Response:
    """GET shows one button (mail scanners follow links); POST acts.

    A POST needs no CSRF value: the signed token in its URL is the proof (RFC 8058 mail
    providers POST without cookies), and only its holder can make one.
    """
    token = request.query_params.get("token", "")
    now = site.clock()
    secret = site.secret
    if request.method == "POST":
        await request.body()  # RFC 8058 sends List-Unsubscribe=One-Click; nothing to read

        def act(store: Store) -> tuple[str, str, int]:
            if action == "confirm":
                sub = subscriptions.confirm(site.config, store, token, now)
                return "Subscribed", f"{sub.email} will get the papers-digest.", 200
            sub, queued = subscriptions.unsubscribe_or_queue(site.config, store, token, now)
            # 202: recorded beside the busy store, applied before any further digest.
            return "Unsubscribed", f"{sub.email} will get no more digests.", 202 if queued else 200

        # An unsubscribe waits only briefly for a busy store, then is queued instead.
        wait = site.unsubscribe_wait if action == "unsubscribe" else DEFAULT_TIMEOUT
        try:
            title, text, status = await site.with_store(act, timeout=wait)
        except DigestError as exc:
            return site.message(request, "Bad request", str(exc), 400)
        return site.message(request, title, text, status)

    def check(store: Store) -> str:
        return subscriptions.subscriber_for(store, secret, token, action, now).email

    try:
        email = await site.with_store(check)
    except DigestError as exc:
        return site.message(request, "Bad request", str(exc), 400)
    if action == "confirm":
        title, text, label = "Confirm?", f"Send the papers-digest to {email}?", "Confirm"
    else:
        title, text, label = "Unsubscribe?", f"Stop sending the papers-digest to {email}?", ""
    return site.message(
        request, title, text, form_action=f"{action}?token={token}", button=label or "Unsubscribe"
    )
