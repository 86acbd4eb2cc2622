"""The SMTP backend against real aiosmtpd servers on 127.0.0.1."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.config import DeliveryConfig, SmtpConfig
from digest.deliver import SendResult, make_backend
from digest.deliver.smtp import SmtpBackend
from digest.deliver.smtp_transaction import _quoted
from digest.deliver.wire import message_bytes
from digest.errors import DeliveryError
from tests.factories import make_email
from tests.smtp_servers import (
    Dropping,
    Rejecting,
    RejectingSender,
    SilentServer,
    SmtpServer,
    TlsPair,
    Transient,
)

SENDER = "digest@digest.example.org"


def backend_for(server: SmtpServer, **changes: object) -> SmtpBackend:
    options: dict[str, object] = {"sender": SENDER}
    for key in ("password", "ssl_context", "max_reconnects"):
        if key in changes:
            options[key] = changes.pop(key)
    config = SmtpConfig(host=server.host, port=server.port, timeout=5.0, **changes)  # type: ignore[arg-type]
    return SmtpBackend(config, **options)  # type: ignore[arg-type]


def statuses(results: list[SendResult]) -> list[str]:
    return [r.status for r in results]


@pytest.fixture(params=["lockstep", "pipelining"])
def server(smtp_server: SmtpServer, request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """The session's plain SMTP server with a fresh `Recording` handler; every test runs
    against a server that offers PIPELINING and one that does not."""
    smtp_server.pipelining = request.param == "pipelining"
    smtp_server.reset()
    yield smtp_server
    smtp_server.pipelining = False


def test_accepts_and_the_server_gets_the_message(server: SmtpServer) -> None:
    emails = [make_email(1, subject="Grüße x\r\nBcc: evil@x"), make_email(2)]
    results = backend_for(server).send(emails)
    assert results == [SendResult("d-0001", "sent"), SendResult("d-0002", "sent")]
    first = server.received[0]
    assert first.mail_from == SENDER and first.rcpt_tos == ("reader1@example.org",)
    msg = first.message
    assert msg["Subject"] == "Grüße x Bcc: evil@x" and msg["Bcc"] is None
    assert msg["Message-ID"] == "<d-0001@digest.example.org>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_lines_that_start_with_a_dot_arrive_as_written(server: SmtpServer) -> None:
    text = ".NET models\n.\n..two dots\nend\n" + "x" * 75 + ".after a soft break\n"
    email = make_email(1, text=text)
    assert statuses(backend_for(server).send([email, make_email(2)])) == ["sent", "sent"]
    first = server.received[0]
    assert first.data == message_bytes(email)  # not cut at the lone "." line
    body = first.message.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == text
    assert first.mail_options == (f"SIZE={len(first.data)}",)


@given(
    st.text(alphabet="ab.@<>\"' ()[]:;,\\!#$%&*+/=?^_`{|}~-é\t", max_size=24)
    | st.from_regex(r"[a-z0-9.+_-]{1,12}@[a-z0-9.-]{1,12}", fullmatch=True)
)
def test_envelope_addresses_are_written_as_smtplib_writes_them(address: str) -> None:
    assert _quoted(address) == smtplib.quoteaddr(address)


def test_an_internationalised_address_goes_out_as_smtputf8(server: SmtpServer) -> None:
    results = backend_for(server).send([make_email(1, to="jörg@exämple.org")])
    assert statuses(results) == ["sent"]
    assert server.received[0].rcpt_tos == ("jörg@xn--exmple-cua.org",)
    assert server.received[0].message["To"] == "jörg@xn--exmple-cua.org"


def test_a_batch_uses_one_connection(server: SmtpServer) -> None:
    emails = [make_email(n) for n in range(20)]
    assert statuses(backend_for(server).send(emails)) == ["sent"] * 20
    assert server.connections == 1
    assert [r.rcpt_tos[0] for r in server.received] == [e.to for e in emails]


def test_parallel_connections_split_the_batch(server: SmtpServer) -> None:
    emails = [make_email(n) for n in range(20)]
    results = backend_for(server, connections=4).send(emails)
    assert [r.delivery_id for r in results] == [e.delivery_id for e in emails]
    assert statuses(results) == ["sent"] * 20
    assert server.connections == 4
    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(e.to for e in emails)


def test_a_delivery_listed_twice_is_sent_once(server: SmtpServer) -> None:
    results = backend_for(server).send([make_email(1), make_email(2), make_email(1)])
    assert statuses(results) == ["sent"] * 3
    assert len(server.received) == 2


def test_greylisting_451_is_retry_then_sent_on_a_later_call(server: SmtpServer) -> None:
    server.reset(Transient(code=451, first=1, stage="RCPT"))
    backend = backend_for(server)
    [first] = backend.send([make_email()])
    assert first.status == "retry" and first.reason.startswith("451")
    assert first.retry_after is None
    assert backend.send([make_email()]) == [SendResult("d-0001", "sent")]
    assert len(server.received) == 1


def test_421_closes_the_connection_and_the_rest_go_over_a_new_one(server: SmtpServer) -> None:
    server.reset(Transient(code=421, first=1, stage="DATA"))
    results = backend_for(server).send([make_email(n) for n in range(3)])
    assert statuses(results) == ["retry", "sent", "sent"]
    assert results[0].reason.startswith("421")
    assert server.connections == 2
    assert len(server.received) == 2


def test_a_drop_during_data_is_retry_and_nothing_is_sent_twice(server: SmtpServer) -> None:
    server.reset(Dropping(first=1))
    backend = backend_for(server)
    results = backend.send([make_email(n) for n in range(4)])
    assert statuses(results) == ["retry", "sent", "sent", "sent"]
    assert "connection" in results[0].reason
    assert server.handler.attempts == 4  # the dropped message was not resent in the call
    assert server.connections == 2
    assert backend.send([make_email(0)]) == [SendResult("d-0000", "sent")]
    assert len(server.received) == 4


def test_reconnects_are_bounded(server: SmtpServer) -> None:
    server.reset(Dropping(first=100))
    results = backend_for(server, max_reconnects=2).send([make_email(n) for n in range(6)])
    assert statuses(results) == ["retry"] * 6
    assert all("connection lost:" in r.reason for r in results[:3])
    assert all("not sent" in r.reason for r in results[3:])
    assert server.connections == 3 and server.handler.attempts == 3


def test_550_for_one_recipient_fails_only_that_message(server: SmtpServer) -> None:
    server.reset(Rejecting(code=550, reject={"reader2@example.org"}))
    results = backend_for(server).send([make_email(n) for n in (1, 2, 3)])
    assert statuses(results) == ["sent", "failed", "sent"]
    assert results[1].reason.startswith("550 5.1.1 <reader2@example.org>")
    assert server.connections == 1


def test_550_for_everyone_is_failed(server: SmtpServer) -> None:
    server.reset(Rejecting(code=550))
    assert statuses(backend_for(server).send([make_email(1), make_email(2)])) == ["failed"] * 2


def test_connection_refused_is_retry_for_the_whole_batch(refused_port: int) -> None:
    backend = SmtpBackend(SmtpConfig(port=refused_port, timeout=5.0), sender=SENDER)
    results = backend.send([make_email(1), make_email(2)])
    assert statuses(results) == ["retry", "retry"]
    assert "connect" in results[0].reason and "refused" in results[0].reason.lower()


def test_a_silent_server_times_out_as_retry() -> None:
    # The server accepts and never greets, for far longer than the test may take: only
    # the client's timeout can end the wait, and the server sees the client hang up.
    with SilentServer() as silent:
        backend = SmtpBackend(SmtpConfig(port=silent.port, timeout=0.3), sender=SENDER)
        results = backend.send([make_email(1), make_email(2)])
        assert silent.wait_for_hangups(1) == 1, "the configured timeout was not applied"
    assert statuses(results) == ["retry", "retry"]  # no session: the whole batch waits
    assert "connect" in results[0].reason and "timed out" in results[0].reason


def test_a_message_that_cannot_be_built_fails_alone(server: SmtpServer) -> None:
    results = backend_for(server).send([make_email(1, message_id="bad"), make_email(2)])
    assert statuses(results) == ["failed", "sent"]


def test_starttls_and_login(smtp_starttls_server: SmtpServer, tls: TlsPair) -> None:
    server = smtp_starttls_server  # user "digest", password "s3cret"
    backend = backend_for(
        server,
        security="starttls",
        username="digest",
        password="s3cret",
        ssl_context=tls.client,
    )
    assert statuses(backend.send([make_email(1), make_email(2)])) == ["sent", "sent"]
    assert all(r.tls and r.login == "digest" for r in server.received)
    assert server.connections == 1


def test_wrong_password_pauses_naming_the_login_step(
    smtp_starttls_server: SmtpServer, tls: TlsPair
) -> None:
    server = smtp_starttls_server
    backend = backend_for(
        server, security="starttls", username="digest", password="nope", ssl_context=tls.client
    )
    results = backend.send([make_email(1), make_email(2)])
    assert statuses(results) == ["paused", "paused"]
    assert "login: 535" in results[0].reason
    assert server.received == []


def test_implicit_tls(smtp_ssl_server: SmtpServer, tls: TlsPair) -> None:
    backend = backend_for(smtp_ssl_server, security="ssl", ssl_context=tls.client)
    assert statuses(backend.send([make_email()])) == ["sent"]
    assert smtp_ssl_server.received[0].tls


def test_an_untrusted_certificate_is_not_accepted(smtp_starttls_server: SmtpServer) -> None:
    server = smtp_starttls_server
    [result] = backend_for(server, security="starttls").send([make_email()])  # system CAs
    assert result.status == "retry" and "STARTTLS" in result.reason
    assert "certificate" in result.reason.lower()
    assert server.received == []


def test_starttls_required_but_not_offered(server: SmtpServer) -> None:
    [result] = backend_for(server, security="starttls").send([make_email()])
    assert result.status == "retry" and "does not offer" in result.reason
    assert server.received == []


def test_make_backend_reads_the_password_from_the_environment() -> None:
    smtp = SmtpConfig(username="digest", password_env="DIGEST_SMTP_PASSWORD")
    config = DeliveryConfig(backend="smtp", smtp=smtp)
    backend = make_backend(config, env={"DIGEST_SMTP_PASSWORD": "s3cret"})
    assert isinstance(backend, SmtpBackend) and backend.name == "smtp"
    assert backend.sender == "digest@localhost"
    with pytest.raises(DeliveryError, match="DIGEST_SMTP_PASSWORD is not set"):
        make_backend(config, env={})


@pytest.mark.parametrize(
    ("smtp", "from_addr", "complaint"),
    [
        (SmtpConfig(username="digest"), "x <a@b.org>", "password_env is not"),
        (SmtpConfig(password_env="PW"), "x <a@b.org>", "no username"),
        (SmtpConfig(), "just a name", "no email address"),
    ],
)
def test_make_backend_refuses_incomplete_settings(
    smtp: SmtpConfig, from_addr: str, complaint: str
) -> None:
    config = DeliveryConfig(backend="smtp", smtp=smtp, from_addr=from_addr)
    with pytest.raises(DeliveryError, match=complaint):
        make_backend(config, env={"PW": "x"})


@pytest.mark.parametrize(
    ("code", "stage"), [(550, "MAIL"), (530, "MAIL"), (553, "MAIL"), (530, "RCPT")]
)
def test_a_refused_sender_pauses_the_whole_batch_unsent(
    server: SmtpServer, code: int, stage: str
) -> None:
    server.reset(RejectingSender(code, stage))
    results = backend_for(server).send([make_email(1), make_email(2), make_email(3)])
    assert statuses(results) == ["paused", "paused", "paused"]
    assert f"{code}" in results[0].reason and "sender" in results[0].reason
    assert server.handler.mail_attempts == 1  # the rest were not even tried
    assert server.received == []


def test_a_message_too_big_at_mail_from_fails_only_itself(server: SmtpServer) -> None:
    server.reset(RejectingSender(552, "MAIL", first=1))
    results = backend_for(server).send([make_email(1), make_email(2)])
    assert statuses(results) == ["failed", "sent"]
