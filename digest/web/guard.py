"""What every request to the reader pages passes through, as plain ASGI middleware and
small helpers: security headers, a body size limit, an access log without tokens, CSRF
tokens for the forms, and rate limits.

Rate limits are kept in memory by the one server process (`digest serve` is one
process; a restart forgets them, which costs at most one more window of requests).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Request bodies above this many bytes get 413 (a form is a few hundred bytes).
MAX_BODY = 16 * 1024
#: Sent with every response (the archive's static files too).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' https: data:; connect-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
#: Paths whose pages carry a reader's token or a form: never kept by a cache.
NO_STORE_PATHS = ("/confirm", "/unsubscribe", "/manage", "/rate", "/subscribe", "/preview")
#: Query parameters never logged: tokens, and the address the archive's form sends.
_TOKEN_IN_QUERY = re.compile(r"((?:^|&)(?:token|t|email)=)[^&]*")
CSRF_COOKIE = "digest_csrf"
CSRF_FIELD = "csrf"


def redact(query: str) -> str:
    """The query string with the value of every `token` (and `email`) replaced."""
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", query)


class GuardMiddleware:
    """Adds the security headers (unless the server does), refuses oversized bodies, logs
    each request once."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        log: Callable[[str], None] | None = None,
        max_body: int = MAX_BODY,
        security_headers: bool = True,
    ) -> None:
        self.app = app
        self.log = log
        self.max_body = max_body
        self.security = (
            [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            if security_headers
            else []
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        status = [0]
        no_store = path.startswith(NO_STORE_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"server"]
                headers += self.security
                if no_store:
                    headers = [(k, v) for k, v in headers if k != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body:
                await _plain(send_with_headers, 413, "request body too large")
                return
            await self.app(scope, _limited(receive, self.max_body), send_with_headers)
        except BodyTooLarge:
            if not status[0]:
                await _plain(send_with_headers, 413, "request body too large")
        finally:
            if self.log is not None:
                query = scope.get("query_string", b"").decode("latin-1")
                target = path + ("?" + redact(query) if query else "")
                client = (scope.get("client") or ("-",))[0]
                self.log(f'{client} "{scope["method"]} {target}" {status[0]}')


class BodyTooLarge(Exception):
    """The client sent more body than the limit (without a Content-Length saying so)."""


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            text = value.decode("latin-1")
            return int(text) if text.isdigit() else None
    return None


def _limited(receive: Receive, limit: int) -> Receive:
    seen = [0]

    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            seen[0] += len(message.get("body", b""))
            if seen[0] > limit:
                raise BodyTooLarge
        return message

    return wrapped


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- CSRF -----------------------------------------------------------------------------------


def new_csrf_cookie() -> str:
    """A fresh random value for the CSRF cookie."""
    return secrets.token_hex(16)


def csrf_field(secret: bytes, cookie: str) -> str:
    """The hidden form value that goes with this cookie (double submit, signed)."""
    return hmac.new(secret, f"csrf.{cookie}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(secret: bytes, cookie: str | None, field: str | None) -> bool:
    """Whether a POST carries the form value that matches its cookie.

    A page on another site can make a browser POST here, but it can neither read the
    cookie (SameSite=Strict, HttpOnly) nor compute the value without the secret.
    """
    if not cookie or not field or len(cookie) > 64:
        return False
    return hmac.compare_digest(csrf_field(secret, cookie), field)


# -- rate limits ----------------------------------------------------------------------------


class RateLimiter:
    """At most `limit` events per key in any `period`, with the clock injected.

    Keeps at most `max_keys` keys (the least recently used are forgotten first), so a
    flood of distinct keys costs bounded memory.
    """

    def __init__(
        self,
        limit: int,
        period: timedelta,
        clock: Callable[[], datetime],
        *,
        max_keys: int = 10_000,
    ) -> None:
        self.limit = limit
        self.period = period
        self.clock = clock
        self.max_keys = max_keys
        self._events: OrderedDict[str, deque[datetime]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Count one event for `key`; False when that goes over the limit (not counted)."""
        now = self.clock()
        events = self._events.pop(key, None) or deque()
        while events and now - events[0] >= self.period:
            events.popleft()
        allowed = len(events) < self.limit
        if allowed:
            events.append(now)
        self._events[key] = events
        while len(self._events) > self.max_keys:
            self._events.popitem(last=False)
        return allowed


def cookie_header(name: str, value: str, *, secure: bool) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, Path=/, Secure over https."""
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def client_key(scope: Mapping[str, Any]) -> str:
    """Who is asking, for the per-client limit: the peer address (no proxy headers)."""
    client = scope.get("client")
    return str(client[0]) if client else "-"
