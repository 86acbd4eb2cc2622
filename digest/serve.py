"""`digest serve`: the reader pages (digest.web) on uvicorn, on 127.0.0.1 by default.

What the server itself guards, below the application (see digest.web.guard for the rest):

- a whole request (line, headers and body) must arrive within `REQUEST_DEADLINE` seconds
  of its first byte, or of the connection: uvicorn's keep-alive timeout is reset by every
  byte, so a client trickling one byte a second would otherwise hold a connection forever;
- the request line and headers may take at most `MAX_HEADER_BYTES` (h11 answers 400);
- at most `MAX_CONNECTIONS` connections and tasks at once (uvicorn answers 503);
- uvicorn's own access log is off: it would print the query string, and with it the
  signed token of a reader's link. The app logs each request with tokens redacted.

The listening socket is bound before the server starts, so a test (or the CLI) knows the
port at once and a connection made before the loop runs simply waits in the backlog.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from digest.config import Config
from digest.deliver import Backend
from digest.web import make_app
from digest.web.files import check_site_dir
from digest.web.pages import UNSUBSCRIBE_WAIT

#: Seconds a client has to send one whole request once it has started (or connected).
REQUEST_DEADLINE = 10.0
#: Bytes of request line + headers h11 buffers before it gives up (400).
MAX_HEADER_BYTES = 16 * 1024
#: Connections and tasks served at once; more get 503.
MAX_CONNECTIONS = 64
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE = 5


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each whole request.

    Armed when the connection opens and when the first byte of a next request arrives;
    disarmed once h11 has the whole request (their_state DONE). On expiry the connection
    is closed: a slow client cannot hold it open.
    """

    request_deadline: float = REQUEST_DEADLINE
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_deadline, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


@dataclass
class RunningServer:
    """A bound server: `run()` serves until `stop()` (or Ctrl-C when run by the CLI)."""

    server: uvicorn.Server
    sock: socket.socket

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def run(self) -> None:
        """Serve on the bound socket until stopped."""
        self.server.run(sockets=[self.sock])

    def stop(self) -> None:
        """Ask the server to finish (it checks about every 0.1 s) and free the socket."""
        self.server.should_exit = True


def make_server(
    config: Config,
    store_path: Path | str,
    clock: Callable[[], datetime],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    site_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
    request_deadline: float = REQUEST_DEADLINE,
    open_backend: Callable[[], Backend] | None = None,
    unsubscribe_wait: float = UNSUBSCRIBE_WAIT,
) -> RunningServer:
    """A server bound to host:port (0 picks a free port), ready to `run()`.

    `log` gets one line per request (tokens redacted); None logs nothing. `open_backend`
    opens the mail backend for confirmation emails (default: the configured one). A
    `site_dir` that holds the store, the secret or config.toml is refused (ConfigError).
    `unsubscribe_wait`: seconds a one-click unsubscribe waits for a busy store before it is
    queued beside it (answered 202) instead.
    """
    directory = site_dir or config.publish.dir
    # The files never to serve: the SQLite store's (the secret lives there too).
    check_site_dir(
        config, store_path if isinstance(store_path, Path) else config.store_path, directory
    )
    directory.mkdir(parents=True, exist_ok=True)
    app = make_app(
        config,
        store_path,
        clock,
        site_dir=directory,
        log=log,
        open_backend=open_backend,
        unsubscribe_wait=unsubscribe_wait,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    protocol = type("Protocol", (DeadlineH11Protocol,), {"request_deadline": request_deadline})
    uv_config = uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=True,
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=5,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        proxy_headers=False,
    )
    return RunningServer(uvicorn.Server(uv_config), sock)


def serve_in_thread(server: RunningServer) -> threading.Thread:
    """Run `server` in a daemon thread (tests); `server.stop()` then `thread.join()`."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return thread
