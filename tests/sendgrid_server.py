"""A local stand-in for the SendGrid v3 API: http.server in a thread on 127.0.0.1.

    with SendgridServer(replies=[too_many_requests(retry_after=7), ACCEPTED]) as api:
        backend = SendgridBackend(SendgridConfig(host=api.url), api_key=api.api_key)
        ...
        assert api.problems == [] and len(api.requests) == 2

(or the `sendgrid_api` fixture of conftest.py: one server per session, `reset()` before
each test, replies queued with `api.script(...)`).

Every request is checked against the mail/send contract we rely on (POST /v3/mail/send,
`Authorization: Bearer <key>`, JSON with personalizations/from/subject/content, text/plain
before text/html, string custom_args, categories); a request that breaks it is answered
400 like SendGrid would and its problems are recorded. Otherwise the server answers with
the next scripted `Reply`, then 202 once the script runs out. A reply with a `delay`
holds the request (`Stalls`, no sleeping) until the client hangs up, which `hangups`
records, or until the server is reset or stopped.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.http_fixture_server import Stalls

HOST = "127.0.0.1"
#: Headers SendGrid will not let a sender set (its own docs list these).
RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to hold the request before answering (for client timeouts); the hold ends
    #: early when the client hangs up or the server is reset or stopped.
    delay: float = 0.0


def _errors(message: str, field_name: str | None = None) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": field_name, "help": None}]}


ACCEPTED = Reply(202)


def too_many_requests(retry_after: float | None = None, reset: int | None = None) -> Reply:
    headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if reset is not None:
        headers["X-RateLimit-Reset"] = str(reset)
    return Reply(429, _errors("too many requests"), headers)


def server_error(status: int = 500, retry_after: float | None = None) -> Reply:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return Reply(status, _errors("internal error"), headers)


def bad_request(message: str, field_name: str | None = None) -> Reply:
    return Reply(400, _errors(message, field_name))


def unauthorized() -> Reply:
    return Reply(401, _errors("The provided authorization grant is invalid, expired, or revoked"))


@dataclass(frozen=True)
class Request:
    """What the server received."""

    method: str
    path: str
    headers: dict[str, str]  #: names lower-cased
    body: bytes
    json: Any
    problems: tuple[str, ...]  #: contract violations (empty if none)
    status: int  #: what the server answered

    @property
    def delivery_id(self) -> str | None:
        args = self.json.get("custom_args", {}) if isinstance(self.json, dict) else {}
        return args.get("delivery_id") if isinstance(args, dict) else None


def contract_problems(
    method: str, path: str, headers: dict[str, str], data: Any, key: str
) -> list[str]:
    """Ways a request breaks the mail/send contract (empty when it keeps it)."""
    problems = []
    if method != "POST" or path != "/v3/mail/send":
        problems.append(f"expected POST /v3/mail/send, got {method} {path}")
    if headers.get("authorization") != f"Bearer {key}":
        problems.append(f"bad Authorization: {headers.get('authorization')!r}")
    if not headers.get("content-type", "").startswith("application/json"):
        problems.append(f"bad Content-Type: {headers.get('content-type')!r}")
    if not isinstance(data, dict):
        return [*problems, "body is not a JSON object"]
    persons = data.get("personalizations")
    if not isinstance(persons, list) or not 1 <= len(persons) <= 1000:
        problems.append("personalizations must hold 1 to 1000 entries")
    else:
        for p in persons:
            to = p.get("to") if isinstance(p, dict) else None
            if not to or not all(isinstance(t, dict) and "@" in t.get("email", "") for t in to):
                problems.append(f"personalization without valid 'to': {p!r}")
    sender = data.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        problems.append(f"bad from: {sender!r}")
    subject = data.get("subject")
    if not isinstance(subject, str) or not subject or "\r" in subject or "\n" in subject:
        problems.append(f"bad subject: {subject!r}")
    content = data.get("content")
    types = [c.get("type") for c in content] if isinstance(content, list) else []
    if types[:2] != ["text/plain", "text/html"]:
        problems.append(f"content must be text/plain then text/html, got {types}")
    elif not all(isinstance(c.get("value"), str) and c["value"] for c in content):
        problems.append("content values must be non-empty strings")
    extra = data.get("headers", {})
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        problems.append(f"headers must map strings to strings: {extra!r}")
    elif RESERVED_HEADERS & {k.lower() for k in extra}:
        problems.append(
            f"reserved headers: {sorted(RESERVED_HEADERS & set(map(str.lower, extra)))}"
        )
    args = data.get("custom_args", {})
    if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
        problems.append(f"custom_args values must be strings: {args!r}")
    categories = data.get("categories", [])
    if not isinstance(categories, list) or len(categories) > 10:
        problems.append(f"categories must be a list of at most 10: {categories!r}")
    return problems


class SendgridServer:
    """The fake API; use as a context manager. `url` is what `host=` takes."""

    def __init__(self, api_key: str = "SG.test-key", replies: Iterable[Reply] = ()) -> None:
        self.api_key = api_key
        self.requests: list[Request] = []
        self._script: deque[Reply] = deque(replies)
        self._lock = threading.Lock()
        self._stalls = Stalls()
        self._httpd = ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    @property
    def problems(self) -> list[str]:
        return [p for r in self.requests for p in r.problems]

    @property
    def accepted_ids(self) -> list[str | None]:
        """Delivery ids of the requests answered 2xx, in order (a duplicate shows twice)."""
        return [r.delivery_id for r in self.requests if 200 <= r.status < 300]

    @property
    def hangups(self) -> list[str]:
        """Delivery ids of the delayed requests whose client hung up before the answer."""
        return list(self._stalls.hangups)

    def wait_for_hangups(self, count: int) -> list[str]:
        """`hangups`, once `count` clients have hung up (the server notices a moment after
        the client gives up)."""
        return self._stalls.wait_for_hangups(count)

    def script(self, *replies: Reply) -> None:
        """Queue more answers."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Release delayed replies, forget requests and the script (between tests)."""
        self._stalls.reset()
        with self._lock:
            self._script.clear()
            self.requests.clear()

    def start(self) -> SendgridServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stalls.close()  # ends delayed replies, now and later
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the request threads
        self._thread.join()

    def __enter__(self) -> SendgridServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[Reply, Request]:
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        problems = contract_problems(method, path, headers, data, self.api_key)
        with self._lock:
            if any(p.startswith("bad Authorization") for p in problems):
                reply = unauthorized()  # what SendGrid answers a wrong key
            elif problems:
                reply = Reply(400, _errors("; ".join(problems)))
            else:
                reply = self._script.popleft() if self._script else ACCEPTED
            request = Request(method, path, headers, body, data, tuple(problems), reply.status)
            self.requests.append(request)
        return reply, request

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply, request = server._answer(self.command, self.path, headers, body)
                label = request.delivery_id or ""
                if reply.delay and server._stalls.hold(self.connection, reply.delay, label):
                    return  # the client gave up: nobody to answer
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (a timeout test): nothing to tell it
                    pass

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler
