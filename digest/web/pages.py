"""What every reader page handler shares: the app's settings, the Jinja pages
(templates/web/, overridable like every template), forms and CSRF, the store per request."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.config import Config
from digest.deliver import Backend, make_backend
from digest.errors import StoreError
from digest.links import public_url
from digest.render import make_environment
from digest.store import Store, open_store
from digest.store.base import DEFAULT_TIMEOUT
from digest.tokens import load_secret
from digest.web.guard import (
    CSRF_COOKIE,
    CSRF_FIELD,
    RateLimiter,
    client_key,
    cookie_header,
    csrf_field,
    csrf_ok,
    new_csrf_cookie,
)

T = TypeVar("T")
#: Previews (each ranks the day's papers: CPU-heavy) worked on at once; more get 503.
PREVIEWS_AT_ONCE = 2
#: Seconds an unsubscribe waits for a busy store before it is queued instead.
UNSUBSCRIBE_WAIT = 2.0


class StoreUnavailable(Exception):
    """The store failed under a request (busy past the wait, damaged, unwritable): the
    app answers 503 without the details, which go to the operator's log (`Site.log`)."""

    def __init__(self, error: StoreError) -> None:
        super().__init__(str(error))
        self.error = error


#: Fields a form may have; a body with more is refused.
MAX_FIELDS = 40


@dataclass
class Site:
    """The state one server process keeps for its handlers (limits live as long as it)."""

    config: Config
    store_path: Path | str  #: a SQLite file or a PostgreSQL URL (`store.open_store`)
    clock: Callable[[], datetime]
    #: Opens the mail backend for confirmation emails (only when one is sent).
    open_backend: Callable[[], Backend] | None = None
    #: The operator's log (the store's problems, which the pages never show); None: none.
    log: Callable[[str], None] | None = None
    #: Seconds a one-click unsubscribe waits for a busy store before queueing instead.
    unsubscribe_wait: float = UNSUBSCRIBE_WAIT
    jinja: jinja2.Environment = field(init=False)
    #: POSTs to /subscribe from one client, and confirmation emails to one address.
    per_client: RateLimiter = field(init=False)
    per_address: RateLimiter = field(init=False)
    #: Live previews from one client (each ranks the day's papers).
    previews: RateLimiter = field(init=False)
    #: Previews being worked on now (handlers run on the one event loop: no lock needed).
    running_previews: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.jinja = make_environment(self.config.templates_dir)
        self.per_client = RateLimiter(10, timedelta(hours=1), self.clock)
        self.per_address = RateLimiter(3, timedelta(days=1), self.clock)
        self.previews = RateLimiter(120, timedelta(minutes=10), self.clock)

    def preview_refusal(self, request: Request) -> tuple[int, str] | None:
        """Why a live preview may not run now (429: this client's limit, 503: too many at
        once), or None: then the caller counts itself in `running_previews` while it runs."""
        if not self.previews.allow(client_key(request.scope)):
            return 429, "too many previews from here; wait a few minutes"
        if self.running_previews >= PREVIEWS_AT_ONCE:
            return 503, "busy with other previews; try again in a few seconds"
        return None

    async def run_preview(self, work: Callable[[Store], T]) -> T:
        """`with_store(work)`, counted in `running_previews` (see `preview_refusal`)."""
        self.running_previews += 1
        try:
            return await self.with_store(work)
        finally:
            self.running_previews -= 1

    @property
    def secret(self) -> bytes:
        """The signing secret (tokens and CSRF), read where the CLI reads it."""
        return load_secret(self.config)

    def backend(self) -> Backend:
        """A mail backend for one message (the configured one unless injected)."""
        if self.open_backend is not None:
            return self.open_backend()
        return make_backend(self.config.delivery)

    async def with_store(
        self, work: Callable[[Store], T], *, timeout: float = DEFAULT_TIMEOUT
    ) -> T:
        """Run `work` with a store of its own in a worker thread (SQLite stays in it).

        A StoreError becomes StoreUnavailable (a 503 page that names no file); `timeout`
        is how long the store waits for another process's write lock.
        """

        def run() -> T:
            try:
                with open_store(self.store_path, timeout=timeout) as store:
                    return work(store)
            except StoreError as exc:
                if self.log is not None:
                    self.log(f"error: {exc}")
                raise StoreUnavailable(exc) from exc

        return await run_in_threadpool(run)

    def page(
        self,
        request: Request,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """Render templates/web/`template` with a CSRF value for its forms."""
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        fresh = not cookie or len(cookie) > 64
        if fresh:
            cookie = new_csrf_cookie()
        html = self.jinja.get_template(f"web/{template}").render(
            csrf_name=CSRF_FIELD, csrf=csrf_field(self.secret, cookie), **context
        )
        response = HTMLResponse(html, status_code=status)
        if fresh:
            # Behind a TLS proxy the request itself is http: the public URL tells.
            secure = request.url.scheme == "https" or public_url(self.config).startswith("https:")
            response.headers.append("set-cookie", cookie_header(CSRF_COOKIE, cookie, secure=secure))
        return response

    def message(
        self, request: Request, title: str, text: str, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        """A page that says one thing (and may hold one button: `form_action`, `button`)."""
        context: dict[str, Any] = {"form_action": "", "button": "", "link": "", "link_text": ""}
        context.update(extra)
        return self.page(request, "message.html.j2", status, title=title, text=text, **context)

    def csrf_refused(self, request: Request, back: str) -> HTMLResponse:
        """The 403 page for a POST without the right CSRF value."""
        return self.message(
            request,
            "Please send the form again",
            "This form has expired or came from another site. Reload the page and send it.",
            403,
            link=back,
            link_text="Back to the form",
        )

    def csrf_valid(self, request: Request, form: Mapping[str, str]) -> bool:
        """Whether a form POST carries the CSRF value of its cookie."""
        return csrf_ok(self.secret, request.cookies.get(CSRF_COOKIE), form.get(CSRF_FIELD))


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded body as {name: last value} (the size limit is the middleware's)."""
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


def see_other(url: str) -> Response:
    """303 to `url` (after a POST, so a reload does not post again)."""
    return Response(status_code=303, headers={"location": url})
