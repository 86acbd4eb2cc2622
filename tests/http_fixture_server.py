"""A real HTTP server on 127.0.0.1 for source tests: fixture files and scripted misbehaviour.

    with FixtureServer() as server:          # or the `http_server` fixture (conftest.py)
        server.route("/feed", Static(body, etag='"v1"'))
        server.route("/flaky", Reply(500), Reply(200, b"ok"))
        fetch(server.url("/flaky"), ...)
        server.requests  # every request, with its headers

Each route plays its replies in order and repeats the last one. A reply can be a plain
`Reply`, a `Static` file that answers 304 to matching conditional headers, a `Slow` one
that stalls before answering, a `Truncated` one that promises more bytes than it sends,
or a `Huge` one that streams more bytes than a client should accept.

A stall never sleeps: `Stalls` holds the connection until the client hangs up (counted
in `hangups`, which is how a test proves a client timeout: the server saw the client
give up long before the stall would have ended), or until the test ends (`reset`,
`stop`). `Stalls` serves the other fake servers (SendGrid, silent SMTP) too.

Bounded: the server answers at most `max_requests` requests per test (then 503s), stalls
at most `MAX_STALL` seconds, and (unless `lifetime` is None, as for the session's
server) stops itself after `lifetime` seconds if a test forgets to.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: The longest a fake server holds a request: far longer than any client timeout a test
#: sets, so a client without its timeout cannot pass; a passing test never waits for it.
MAX_STALL = 120.0
#: How long a test waits for something that happens at once when the code works (a
#: scheduled job, a server noticing a hang-up): it only turns a hang into a failure.
HANG_GUARD = 60.0


class Stalls:
    """Connections a fake server holds unanswered on purpose, woken by events, not sleeps.

    `hold` returns as soon as the client hangs up (True, recorded in `hangups`) or when
    `release` is called (False): the servers release every stall when a test ends.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: dict[socket.socket, bool] = {}  #: connection -> released
        self._closed = False  #: after `close`, a new stall ends at once
        self.hangups: list[str] = []  #: labels of the stalls whose client hung up

    def hold(self, conn: socket.socket, limit: float, label: str = "") -> bool:
        """Keep `conn` unanswered until its client hangs up (True), or until the stall is
        released or `limit` seconds pass (False)."""
        with self._changed:
            if self._closed:
                return False
            self._held[conn] = False
        try:
            readable, _, _ = select.select([conn], [], [], min(limit, MAX_STALL))
            with self._changed:
                released = self._held[conn]
            if released or not readable:
                return False
            try:
                hung_up = conn.recv(1, socket.MSG_PEEK) == b""  # EOF (not more data)
            except OSError:  # reset by the peer
                hung_up = True
            if hung_up:
                with self._changed:
                    self.hangups.append(label)
                    self._changed.notify_all()
            return hung_up
        finally:
            with self._changed:
                del self._held[conn]

    def release(self) -> None:
        """End every stall now (shutting our reading side wakes the waiting `select`)."""
        with self._changed:
            for conn in self._held:
                self._held[conn] = True
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RD)

    def close(self) -> None:
        """Release every stall, and end any later one at once (the server is stopping)."""
        with self._changed:
            self._closed = True
        self.release()

    def reset(self) -> None:
        """Release every stall and forget the hang-ups (between tests)."""
        self.release()
        with self._changed:
            self.hangups.clear()

    def wait_for_hangups(self, count: int, timeout: float = HANG_GUARD) -> list[str]:
        """The hang-ups once there are `count` of them (or all there are after `timeout`)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.hangups) >= count, timeout)
            return list(self.hangups)


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
    """Stalls up to `delay` seconds before answering (to outlast a client's read timeout).

    The stall ends when the client hangs up (then nothing is sent, and the path is added
    to `FixtureServer.hangups`) or when the server is reset or stopped.
    """

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

    def __init__(self, *, max_requests: int = 200, lifetime: float | None = 60.0) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[str, list[Behaviour]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stalls = Stalls()
        self._max_requests = max_requests
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fixture = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._watchdog = None if lifetime is None else threading.Timer(lifetime, self.stop)
        if self._watchdog is not None:
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

    @property
    def hangups(self) -> list[str]:
        """Paths of the `Slow` requests whose client hung up during the stall, in order."""
        return list(self._stalls.hangups)

    def wait_for_hangups(self, count: int) -> list[str]:
        """`hangups`, once `count` clients have hung up (they notice a timeout on their own
        side first; the server sees it a moment later)."""
        return self._stalls.wait_for_hangups(count)

    # -- life cycle -------------------------------------------------------------

    def __enter__(self) -> FixtureServer:
        self._thread.start()
        if self._watchdog is not None:
            self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget routes and requests and release stalls: a clean server for the next test."""
        self._stalls.reset()
        with self._lock:
            self._routes.clear()
            self.requests.clear()

    def stop(self) -> None:
        """Release stalled handlers, stop serving and close the socket (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._stalls.close()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

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

    def _stall(self, conn: socket.socket, seconds: float, path: str) -> bool:
        """Hold the request; True when the client hung up (then there is no one to answer)."""
        return self._stalls.hold(conn, seconds, label=path)


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
            if fixture._stall(self.connection, behaviour.delay, request.path):
                self.close_connection = True
            else:
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
