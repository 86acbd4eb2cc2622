"""Real SMTP servers (aiosmtpd) on 127.0.0.1 for tests, each on an ephemeral port.

    with SmtpServer(Recording()) as server:
        ...send to server.host, server.port...
        assert server.connections == 1 and len(server.received) == 20

The `smtp_server` fixtures of conftest.py start one server per session and `reset()` it
before each test; a test that wants other replies installs its handler with
`server.reset(Transient(code=451))`.

Handlers decide what the server says:

    Recording()                      accepts and records every message
    Transient(code=451, first=N)     answers `code` to the first N messages, then accepts
                                     (at RCPT by default; 421 also closes the connection)
    Dropping(first=N)                drops the connection after DATA, before replying,
                                     for the first N messages, then accepts
    Rejecting(code=550, reject=...)  refuses the listed recipients (all if None) at RCPT
    RejectingSender(code, stage)     refuses the sender at MAIL FROM (or 530 at RCPT)

aiosmtpd 1.4 cannot listen on port 0 (it connects to `self.port` to trigger its lazy
start), so `_Controller` binds first and reads the port the OS chose. `tls_pair()` makes a
throwaway CA and a certificate for 127.0.0.1 with `cryptography`, for STARTTLS and
implicit TLS (`SmtpServer(..., tls=...)`, `SmtpServer(..., implicit_tls=...)`).

`SilentServer` is no SMTP server at all: it accepts TCP connections and never greets,
and records each client that hangs up on it (a client timeout, seen from the server).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.http_fixture_server import MAX_STALL, Stalls

HOST = "127.0.0.1"


class _QuietLoginDataDeprecation(logging.Filter):
    """aiosmtpd 1.4 logs "Session.login_data is deprecated" on every successful AUTH, because
    it sets that legacy attribute itself; we never touch it, so drop exactly that record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Session.login_data is deprecated")


logging.getLogger("mail.log").addFilter(_QuietLoginDataDeprecation())


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool  #: whether the session was encrypted (STARTTLS or implicit TLS)
    login: str | None  #: the user name the session logged in with, if any
    mail_options: tuple[str, ...] = ()  #: what MAIL FROM declared (SIZE=...)

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class Handler:
    """Base handler: counts DATA attempts and records what it accepts."""

    #: Whether EHLO offers PIPELINING (RFC 2920), as the relays a list sends through do;
    #: aiosmtpd reads pipelined commands either way, but does not say so itself.
    pipelining = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.attempts = 0  #: DATA commands seen (accepted or not)
        self.rcpt_attempts = 0  #: RCPT commands seen

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list:
        session.host_name = hostname  # the hook's job, once there is one
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        with self._lock:
            self.rcpt_attempts += 1
            n = self.rcpt_attempts
        refusal = self.on_rcpt(server, address, n)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.attempts += 1
            n = self.attempts
        return await self.on_data(server, session, envelope, n)

    def on_rcpt(self, server: SMTP, address: str, n: int) -> str | None:
        """A reply refusing the `n`th RCPT, or None to accept it."""
        return None

    async def on_data(self, server: SMTP, session: Session, envelope: Envelope, n: int) -> str:
        """The reply to the `n`th DATA; this one accepts and records."""
        return self.accept(server, session, envelope)

    def accept(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data.login.decode() if session.auth_data else None
        content = envelope.original_content or b""
        transport = server.transport
        # session.ssl is set by STARTTLS only; an implicit-TLS transport says so itself.
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        record = Received(
            str(envelope.mail_from),
            tuple(envelope.rcpt_tos),
            content,
            tls,
            login,
            tuple(envelope.mail_options),
        )
        with self._lock:
            self.received.append(record)
        return "250 2.0.0 OK queued"


class Recording(Handler):
    """Accepts and records every message."""


class Transient(Handler):
    """Answers a 4xx to the first `first` messages (at RCPT or DATA), then accepts."""

    def __init__(self, code: int = 451, first: int = 1, stage: str = "RCPT") -> None:
        super().__init__()
        assert stage in ("RCPT", "DATA")
        self.code, self.first, self.stage = code, first, stage

    def _reply(self, server: SMTP) -> str:
        if self.code == 421:  # a real server closes after 421; let the reply go out first
            server.loop.call_soon(_close_transport, server)
            return "421 4.3.2 Service shutting down, try again later"
        return f"{self.code} 4.7.1 Try again later"

    def on_rcpt(self, server: SMTP, address: str, n: int) -> str | None:
        return self._reply(server) if self.stage == "RCPT" and n <= self.first else None

    async def on_data(self, server: SMTP, session: Session, envelope: Envelope, n: int) -> str:
        if self.stage == "DATA" and n <= self.first:
            return self._reply(server)
        return self.accept(server, session, envelope)


class Dropping(Handler):
    """Drops the connection after the DATA content, before replying, for the first N."""

    def __init__(self, first: int = 1) -> None:
        super().__init__()
        self.first = first

    async def on_data(self, server: SMTP, session: Session, envelope: Envelope, n: int) -> str:
        if n > self.first:
            return self.accept(server, session, envelope)
        assert server.transport is not None
        server.transport.abort()
        # connection_lost() cancels this handler task, the path aiosmtpd expects when a
        # connection resets during DATA: wait for that, on an event nothing else sets.
        await asyncio.Event().wait()
        raise AssertionError("unreachable: the wait ends only by cancellation")


class Rejecting(Handler):
    """Refuses `reject` (every recipient if None) with `code` at RCPT; accepts the rest."""

    def __init__(self, code: int = 550, reject: set[str] | None = None) -> None:
        super().__init__()
        self.code, self.reject = code, reject

    def on_rcpt(self, server: SMTP, address: str, n: int) -> str | None:
        if self.reject is None or address in self.reject:
            return f"{self.code} 5.1.1 <{address}>: Recipient address rejected: User unknown"
        return None


class RejectingSender(Handler):
    """Refuses the sender with `code` at MAIL FROM (or, with stage "RCPT", every
    recipient, as a server wanting AUTH says 530), for the first `first` transactions."""

    def __init__(self, code: int = 550, stage: str = "MAIL", first: int = 10**9) -> None:
        super().__init__()
        assert stage in ("MAIL", "RCPT")
        self.code, self.stage, self.first = code, stage, first
        self.mail_attempts = 0  #: MAIL FROM commands seen

    def _refusal(self) -> str:
        return f"{self.code} 5.7.1 Sender address rejected: not allowed"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        with self._lock:
            self.mail_attempts += 1
            n = self.mail_attempts
        if self.stage == "MAIL" and n <= self.first:
            return self._refusal()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    def on_rcpt(self, server: SMTP, address: str, n: int) -> str | None:
        return self._refusal() if self.stage == "RCPT" and n <= self.first else None


def _close_transport(server: SMTP) -> None:
    if server.transport is not None:
        server.transport.close()


class _Controller(Controller):
    """A Controller that listens on an ephemeral port and counts connections."""

    def __init__(self, handler: Handler, on_connect: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(handler, hostname=HOST, port=0, **kwargs)
        self._on_connect = on_connect

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def factory(self) -> SMTP:
        self._on_connect()
        return SMTP(self.handler, loop=self.loop, **self.SMTP_kwargs)


class SmtpServer:
    """A running aiosmtpd server on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        """`tls` offers STARTTLS; `implicit_tls` wraps the socket (SMTPS);
        `users` (name -> password) enables AUTH, which aiosmtpd offers only over TLS."""
        self.handler = handler or Recording()
        self.pipelining = False  #: offered by the handlers `reset` installs
        self.connections = 0  #: TCP connections accepted (not counting aiosmtpd's own probe)
        self._lock = threading.Lock()
        kwargs: dict[str, Any] = {"server_hostname": "smtp.test", "ready_timeout": 10.0}
        if tls is not None:
            kwargs["tls_context"] = tls
        if implicit_tls is not None:
            kwargs["ssl_context"] = implicit_tls
        if users is not None:
            kwargs["authenticator"] = _Authenticator(users)
        self._controller = _Controller(self.handler, self._count, **kwargs)

    def _count(self) -> None:
        with self._lock:
            self.connections += 1

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def reset(self, handler: Handler | None = None) -> None:
        """Answer new connections with `handler` (a fresh `Recording` by default) and count
        connections from zero: a clean server for the next test."""
        handler = handler or Recording()
        handler.pipelining = self.pipelining
        self.handler = self._controller.handler = handler
        with self._lock:
            self.connections = 0

    def start(self) -> SmtpServer:
        self._controller.start()
        with self._lock:
            self.connections = 0  # forget the probe start() made
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word (no SMTP greeting).

    Each connection is held for up to `hold` seconds (far longer than any client timeout
    a test sets), then closed; `hangups` counts the clients that gave up first. Use as a
    context manager; leaving it releases every held connection at once.
    """

    def __init__(self, hold: float = MAX_STALL) -> None:
        self.hold = hold
        self._listener = socket.create_server((HOST, 0))
        self._stalls = Stalls()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def hangups(self) -> int:
        return len(self._stalls.hangups)

    def wait_for_hangups(self, count: int) -> int:
        """`hangups`, once `count` clients have hung up (they time out on their side first)."""
        return len(self._stalls.wait_for_hangups(count))

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # the listener was shut down: stop accepting
                return
            thread = threading.Thread(target=self._silence, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _silence(self, conn: socket.socket) -> None:
        with conn:
            self._stalls.hold(conn, self.hold)

    def __enter__(self) -> SilentServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._acceptor.join()
        self._stalls.close()
        for thread in self._threads:
            thread.join()


class _Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)


@dataclass(frozen=True)
class TlsPair:
    """A server context with a certificate for 127.0.0.1, and a client context trusting it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def tls_pair() -> TlsPair:
    """Make a throwaway CA and a server certificate for 127.0.0.1 (EC keys: fast)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("papers-digest test CA"))
        .issuer_name(name("papers-digest test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(HOST))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(cert.public_bytes(pem))
        key_file.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return TlsPair(server=server, client=client)
