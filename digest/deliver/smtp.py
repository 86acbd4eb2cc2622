"""The SMTP backend: smtplib, one connection per batch (or `connections` in threads).

Each `send` opens its connection(s), sends every message once, and says QUIT. What the
server says decides the result:

    2xx                                         sent
    4xx (421, 450, 451, 452 ...), -1            retry   (421 also closes the connection)
    5xx at RCPT or DATA (550, 552, 554 ...)     failed
    5xx at MAIL FROM (not 552), 530 anywhere    paused  (the sender is refused: every
    AUTH refused (535 ...), no AUTH offered             message would be; none is burnt)
    dropped connection, refused, timeout, TLS   retry
    SMTPUTF8 address, server without SMTPUTF8   failed

A refused recipient fails only its own message. After a dropped connection the message
in flight is "retry" (the server may or may not have kept it: the stable Message-ID lets
the receiving side see a duplicate) and the rest of the batch goes over a new connection,
at most `max_reconnects` times. Trouble setting the session up (connect, greeting,
STARTTLS) is never the message's fault, so it is "retry" for the whole batch, with the
reason naming the step; a refused login is "paused" for the whole batch. After a
"paused" message the rest of its batch is "paused" too, unsent.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Literal

from digest.config import DeliveryConfig, SmtpConfig
from digest.deliver.message import (
    OutgoingEmail,
    SendResult,
    build_message,
    envelope_address,
    one_line,
    unique_by_delivery,
    wire_address,
)
from digest.deliver.smtp_transaction import transact
from digest.deliver.wire import message_bytes
from digest.errors import DeliveryError

DEFAULT_MAX_RECONNECTS = 3


Status = Literal["sent", "retry", "failed", "paused"]


class _SessionError(Exception):
    """Setting up the SMTP session failed (the text says at which step)."""

    def __init__(self, text: str, status: Status = "retry") -> None:
        super().__init__(text)
        self.status = status


#: Replies to MAIL FROM that are about the message, not the sender (552: too big).
_MESSAGE_LEVEL_AT_MAIL = frozenset({552})
#: 530: authentication required; whatever the stage, the session (sender) is refused.
_SENDER_LEVEL = frozenset({530})


class SmtpBackend:
    """Sends through one SMTP server with smtplib."""

    name = "smtp"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        sender: str,
        password: str = "",
        ssl_context: ssl.SSLContext | None = None,
        max_reconnects: int = DEFAULT_MAX_RECONNECTS,
        keep_open: bool = False,
    ) -> None:
        """`sender` is the envelope address; `ssl_context` defaults to the system's CAs."""
        self.config = config
        self.sender = sender
        self._password = password
        self._ssl_context = ssl_context
        self.max_reconnects = max_reconnects
        self.where = f"smtp {config.host}:{config.port}"
        #: Open connections by slot, kept between `send` calls so that a caller may send
        #: small batches (and record each outcome at once) without reconnecting.
        self._pool: dict[int, smtplib.SMTP] = {}
        self.keep_open = keep_open

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Send each email once; one result per email, in order."""
        emails = list(emails)
        todo, firsts = unique_by_delivery(emails)
        results: list[SendResult | None] = [None] * len(emails)
        chunks = _split(todo, self.config.connections)
        if len(chunks) == 1:
            self._send_chunk(emails, chunks[0], results, 0)
        elif chunks:
            with ThreadPoolExecutor(len(chunks), thread_name_prefix="digest-smtp") as pool:
                futures = [
                    pool.submit(self._send_chunk, emails, c, results, slot)
                    for slot, c in enumerate(chunks)
                ]
            for future in futures:
                future.result()  # a bug in a worker surfaces here, after all have finished
        done = [results[first] for first in firsts]
        assert all(r is not None for r in done)
        return done  # type: ignore[return-value]

    def close(self) -> None:
        """Say QUIT on every connection kept open between `send` calls."""
        for conn in self._pool.values():
            _quit(conn)
        self._pool.clear()

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _open(self) -> smtplib.SMTP:
        """Connect, greet, secure and log in; raises _SessionError naming the failed step."""
        cfg = self.config
        step = "connect"
        conn: smtplib.SMTP | None = None
        try:
            if cfg.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=self._context()
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            step = "EHLO"
            conn.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                step = "STARTTLS"
                if not conn.has_extn("starttls"):
                    raise _SessionError(f"{self.where}: STARTTLS: the server does not offer it")
                conn.starttls(context=self._context())
                conn.ehlo()
            if cfg.username:
                step = "login"
                conn.login(cfg.username, self._password)
        except (smtplib.SMTPException, OSError) as exc:
            if conn is not None:
                conn.close()
            refused = step == "login" and isinstance(
                exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError
            )
            status: Status = "paused" if refused else "retry"
            raise _SessionError(f"{self.where}: {step}: {_describe(exc)}", status) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    def _send_chunk(
        self,
        emails: list[OutgoingEmail],
        indices: list[int],
        results: list[SendResult | None],
        slot: int,
    ) -> None:
        """Send `emails[i]` for i in `indices` over the slot's connection (kept open for the
        next call), reconnecting if it dropped."""
        todo: list[int] = []
        messages: dict[int, bytes | EmailMessage] = {}
        for i in indices:
            try:
                messages[i] = message_bytes(emails[i]) or build_message(emails[i])
                todo.append(i)
            except ValueError as exc:
                results[i] = SendResult(emails[i].delivery_id, "failed", one_line(str(exc)))
        conn: smtplib.SMTP | None = self._pool.pop(slot, None)
        opened = 0
        try:
            for pos, i in enumerate(todo):
                if conn is None:
                    if opened > self.max_reconnects:
                        why = (
                            f"{self.where}: not sent: connection lost {opened} times in this batch"
                        )
                        _fill(results, emails, todo[pos:], "retry", why)
                        return
                    opened += 1
                    try:
                        conn = self._open()
                    except _SessionError as exc:
                        _fill(results, emails, todo[pos:], exc.status, one_line(str(exc)))
                        return
                results[i], alive = self._send_one(conn, emails[i], messages[i])
                if results[i].status == "paused":  # type: ignore[union-attr]
                    why = one_line(f"not sent: {results[i].reason}")  # type: ignore[union-attr]
                    _fill(results, emails, todo[pos + 1 :], "paused", why)
                    return
                if not alive:
                    conn.close()
                    conn = None
                    if pos == 0 and opened == 0:  # a kept connection went stale: once more
                        conn = self._open_or_none()
                        if conn is not None:
                            opened += 1
                            results[i], alive = self._send_one(conn, emails[i], messages[i])
                            if not alive:
                                conn.close()
                                conn = None
        finally:
            if conn is not None:
                if self.keep_open:
                    self._pool[slot] = conn
                else:
                    _quit(conn)

    def _open_or_none(self) -> smtplib.SMTP | None:
        try:
            return self._open()
        except _SessionError:
            return None

    def _send_one(
        self, conn: smtplib.SMTP, email: OutgoingEmail, msg: bytes | EmailMessage
    ) -> tuple[SendResult, bool]:
        """Send one message; its result, and whether the connection is still usable."""
        delivery_id = email.delivery_id
        try:
            if isinstance(msg, bytes):  # the fast path: ASCII envelope, CRLF, no line to stuff
                transact(conn, self.sender, wire_address(email.to), msg)
            else:  # SMTPUTF8: the stdlib generator knows the options
                conn.send_message(msg, from_addr=self.sender, to_addrs=[wire_address(email.to)])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (-1, b"recipient refused"))
            return _reply(delivery_id, code, text), _alive(conn)
        except smtplib.SMTPSenderRefused as exc:  # MAIL FROM refused: the sender, mostly
            if 500 <= exc.smtp_code <= 599 and exc.smtp_code not in _MESSAGE_LEVEL_AT_MAIL:
                return _paused(delivery_id, f"MAIL FROM {exc.smtp_code}", exc.smtp_error), _alive(
                    conn
                )
            return _reply(delivery_id, exc.smtp_code, exc.smtp_error), _alive(conn)
        except smtplib.SMTPResponseException as exc:  # MAIL FROM or DATA refused
            return _reply(delivery_id, exc.smtp_code, exc.smtp_error), _alive(conn)
        except smtplib.SMTPServerDisconnected as exc:
            return SendResult(delivery_id, "retry", one_line(f"connection lost: {exc}")), False
        except smtplib.SMTPNotSupportedError as exc:
            return SendResult(delivery_id, "failed", one_line(str(exc))), _alive(conn)
        except smtplib.SMTPException as exc:
            return SendResult(delivery_id, "retry", one_line(str(exc))), _alive(conn)
        except OSError as exc:  # timeouts, resets, TLS errors mid-session
            return SendResult(delivery_id, "retry", one_line(_describe(exc))), False
        return SendResult(delivery_id, "sent"), True


def _reply(delivery_id: str, code: int, text: bytes | str) -> SendResult:
    """Classify an SMTP reply: 5xx is permanent, anything else is worth retrying."""
    if code in _SENDER_LEVEL:
        return _paused(delivery_id, str(code), text)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if 500 <= code <= 599:
        return SendResult(delivery_id, "failed", one_line(f"{code} {text}"))
    return SendResult(delivery_id, "retry", one_line(f"{code} {text}"))


def _paused(delivery_id: str, what: str, text: bytes | str) -> SendResult:
    """The sender is refused: every message would be; fix [delivery] and send again."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    why = f"the server refused the sender ({what} {text}); check [delivery] from and the login"
    return SendResult(delivery_id, "paused", one_line(why))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return f"{exc.smtp_code} {text}"
    if isinstance(exc, TimeoutError):
        return f"timed out ({exc})" if str(exc) else "timed out"
    return str(exc) or type(exc).__name__


def _alive(conn: smtplib.SMTP) -> bool:
    return getattr(conn, "sock", None) is not None


def _quit(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _fill(
    results: list[SendResult | None],
    emails: list[OutgoingEmail],
    indices: list[int],
    status: Status,
    reason: str,
) -> None:
    for i in indices:
        results[i] = SendResult(emails[i].delivery_id, status, reason)


def _split(indices: list[int], parts: int) -> list[list[int]]:
    """`indices` in at most `parts` contiguous runs of nearly equal length."""
    parts = max(1, min(parts, len(indices)))
    size, extra = divmod(len(indices), parts)
    runs, start = [], 0
    for n in range(parts):
        end = start + size + (1 if n < extra else 0)
        runs.append(indices[start:end])
        start = end
    return [run for run in runs if run]


def from_config(config: DeliveryConfig, env: Mapping[str, str]) -> SmtpBackend:
    """The registry entry: reads the password from the variable `password_env` names."""
    smtp = config.smtp
    sender = envelope_address(config.from_addr)
    if not sender:
        raise DeliveryError(f"delivery.from = {config.from_addr!r}: no email address in it")
    password = ""
    if smtp.username:
        if not smtp.password_env:
            raise DeliveryError(
                "delivery.smtp.username is set but password_env is not: name the environment "
                "variable that holds the password"
            )
        password = env.get(smtp.password_env, "")
        if not password:
            raise DeliveryError(
                f"delivery.smtp.password_env: environment variable {smtp.password_env} is not set"
            )
    elif smtp.password_env:
        raise DeliveryError(
            f"delivery.smtp.password_env = {smtp.password_env!r} but no username to log in with"
        )
    return SmtpBackend(smtp, sender=sender, password=password, keep_open=True)
