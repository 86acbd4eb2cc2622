"""A real HTTP server on 127.0.0.1 for source tests: fixture files and scripted misbehaviour.

    with FixtureServer() as server:
        server.route("/feed", Static(body, etag='"v1"'))
        server.route("/flaky", Reply(500), Reply(200, b"ok"))
        fetch(server.url("/flaky"), ...)
        server.requests  # every request, with its headers

Each route plays its replies in order and repeats the last one. A reply can be a plain
`Reply`, a `Static` file that answers 304 to matching conditional headers, a `Slow` one
that stalls before answering, a `Truncated` one that promises more bytes than it sends,
or a `Huge` one that streams more bytes than a client should accept.

Bounded: the server answers at most `max_requests` requests (then 503s), stalls at most
`MAX_STALL` seconds, and stops itself after `lifetime` seconds if a test forgets to.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_STALL = 5.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  #: names lower-cased


@dataclass(frozen=True)
class Reply:
    """A fixed response."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Static:
    """A file with validators: 304 when If-None-Match or If-Modified-Since matches."""

    body: bytes
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: str | None = None  #: an HTTP date

    @classmethod
    def file(cls, path: Path, content_type: str, **validators: str) -> Static:
        return cls(path.read_bytes(), content_type, **validators)


@dataclass(frozen=True)
class Slow:
    """Stalls `delay` seconds before answering (to outlast a client's read timeout)."""

    delay: float
    reply: Reply = field(default_factory=lambda: Reply(200, b"late"))


@dataclass(frozen=True)
class Truncated:
    """Declares `declared` bytes in Content-Length, sends `body`, then hangs up."""

    body: bytes
    declared: int


@dataclass(frozen=True)
class Huge:
    """Streams `size` bytes; with `declare=False` there is no Content-Length to go by."""

    size: int
    declare: bool = True


Behaviour = Reply | Static | Slow | Truncated | Huge


class FixtureServer:
    """A ThreadingHTTPServer on an ephemeral port of 127.0.0.1, as a context manager."""

    def __init__(self, *, max_requests: int = 200, lifetime: float = 60.0) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[str, list[Behaviour]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._max_requests = max_requests
        self._lifetime = lifetime
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fixture = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._watchdog = threading.Timer(lifetime, self.stop)
        self._watchdog.daemon = True

    # -- set-up ---------------------------------------------------------------

    def route(self, path: str, *replies: Behaviour) -> str:
        """Serve `replies` at `path`, one per request, the last one repeated; returns the URL."""
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._routes[path] = list(replies)
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    @property
    def host(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- life cycle -------------------------------------------------------------

    def __enter__(self) -> FixtureServer:
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Wake stalled handlers, stop serving and close the socket (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._watchdog.cancel()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=MAX_STALL + 1)

    # -- used by the handler ------------------------------------------------------

    def _next(self, request: RecordedRequest) -> Behaviour | None:
        with self._lock:
            self.requests.append(request)
            if len(self.requests) > self._max_requests:
                return Reply(503, b"fixture server: request budget spent")
            replies = self._routes.get(request.path.split("?", 1)[0])
            if replies is None:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _stall(self, seconds: float) -> None:
        self._stopping.wait(min(seconds, MAX_STALL))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fixture: FixtureServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        fixture = self.server.fixture
        request = RecordedRequest("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
        behaviour = fixture._next(request)
        if behaviour is None:
            self._send(Reply(404, b"no such fixture"))
        elif isinstance(behaviour, Reply):
            self._send(behaviour)
        elif isinstance(behaviour, Static):
            self._static(behaviour, request.headers)
        elif isinstance(behaviour, Slow):
            fixture._stall(behaviour.delay)
            self._send(behaviour.reply)
        elif isinstance(behaviour, Truncated):
            self._truncated(behaviour)
        else:
            self._huge(behaviour)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response_only(reply.status)
            if "Date" not in reply.headers:
                self.send_header("Date", self.date_time_string())
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.status != 304:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.status != 304:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first
            self.close_connection = True

    def _static(self, static: Static, headers: dict[str, str]) -> None:
        validators = {}
        if static.etag:
            validators["ETag"] = static.etag
        if static.last_modified:
            validators["Last-Modified"] = static.last_modified
        if _not_modified(static, headers):
            self._send(Reply(304, b"", validators))
        else:
            self._send(Reply(200, static.body, {"Content-Type": static.content_type, **validators}))

    def _truncated(self, truncated: Truncated) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(truncated.declared))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(truncated.body)
        self.wfile.flush()
        self.close_connection = True

    def _huge(self, huge: Huge) -> None:
        self.send_response(200)
        if huge.declare:
            self.send_header("Content-Length", str(huge.size))
        self.send_header("Connection", "close")
        self.end_headers()
        block = b"x" * 65536
        sent = 0
        try:
            while sent < huge.size:
                n = min(len(block), huge.size - sent)
                self.wfile.write(block[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: good
            pass
        self.close_connection = True


def _not_modified(static: Static, headers: dict[str, str]) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since is compared as a date."""
    if "if-none-match" in headers:
        tags = {t.strip() for t in headers["if-none-match"].split(",")}
        return static.etag is not None and (static.etag in tags or "*" in tags)
    since = headers.get("if-modified-since")
    if since and static.last_modified:
        try:
            return parsedate_to_datetime(static.last_modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False
