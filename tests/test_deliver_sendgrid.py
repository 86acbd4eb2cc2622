"""The SendGrid backend: the real `sendgrid` client against a local v3 API stand-in."""

from __future__ import annotations

import pytest

from digest.config import DeliveryConfig, SendgridConfig
from digest.deliver import SendResult, make_backend
from digest.deliver.sendgrid import SendgridBackend
from digest.errors import DeliveryError
from tests.factories import MAILTO, UNSUBSCRIBE, make_email
from tests.http_fixture_server import MAX_STALL
from tests.sendgrid_server import (
    ACCEPTED,
    Reply,
    SendgridServer,
    bad_request,
    server_error,
    too_many_requests,
)

NOW = 1_729_000_000.0  # the injected clock, epoch seconds


@pytest.fixture
def api(sendgrid_api: SendgridServer) -> SendgridServer:
    """The session's SendGrid stand-in: no requests yet, 202 until a test scripts more."""
    return sendgrid_api


def backend_for(api: SendgridServer, timeout: float = 5.0) -> SendgridBackend:
    config = SendgridConfig(host=api.url, timeout=timeout)
    return SendgridBackend(config, api_key=api.api_key, clock=lambda: NOW)


def statuses(results: list[SendResult]) -> list[str]:
    return [r.status for r in results]


def test_202_is_sent_and_the_request_keeps_the_contract(api: SendgridServer) -> None:
    email = make_email(1, subject="Grüße x\r\nBcc: evil@x", from_addr="Pâpers <digest@d.org>")
    assert backend_for(api).send([email]) == [SendResult("d-0001", "sent")]
    assert api.problems == []
    [request] = api.requests
    assert request.path == "/v3/mail/send"
    assert request.headers["authorization"] == f"Bearer {api.api_key}"
    body = request.json
    assert body["personalizations"] == [{"to": [{"email": "reader1@example.org"}]}]
    assert body["from"] == {"email": "digest@d.org", "name": "Pâpers"}
    assert body["subject"] == "Grüße x Bcc: evil@x"
    assert body["content"] == [
        {"type": "text/plain", "value": email.text},
        {"type": "text/html", "value": email.html},
    ]
    assert body["headers"] == {
        "Message-ID": "<d-0001@digest.example.org>",
        "List-Unsubscribe": f"<{UNSUBSCRIBE}>, <{MAILTO}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
        "X-Digest-Delivery": "d-0001",
    }
    assert body["custom_args"] == {"delivery_id": "d-0001"}
    assert body["categories"] == ["papers-digest"]


def test_one_request_per_email_and_duplicates_once(api: SendgridServer) -> None:
    results = backend_for(api).send([make_email(1), make_email(2), make_email(1)])
    assert statuses(results) == ["sent"] * 3
    assert api.accepted_ids == ["d-0001", "d-0002"]


def test_429_with_retry_after_stops_the_batch(api: SendgridServer) -> None:
    api.script(too_many_requests(retry_after=7))
    results = backend_for(api).send([make_email(1), make_email(2)])
    assert results[0] == SendResult("d-0001", "retry", "429 too many requests", 7.0)
    assert results[1].status == "retry" and results[1].retry_after == 7.0
    assert "not sent" in results[1].reason
    assert len(api.requests) == 1


def test_429_with_only_x_ratelimit_reset_waits_until_the_reset(api: SendgridServer) -> None:
    api.script(too_many_requests(reset=int(NOW) + 42))
    [result] = backend_for(api).send([make_email()])
    assert result.status == "retry" and result.retry_after == 42.0


def test_500_is_retry_and_the_batch_goes_on(api: SendgridServer) -> None:
    api.script(server_error(500), ACCEPTED)
    results = backend_for(api).send([make_email(1), make_email(2)])
    assert statuses(results) == ["retry", "sent"]
    assert results[0].reason == "500 internal error" and results[0].retry_after is None
    assert [r.status for r in api.requests] == [500, 202]
    assert api.accepted_ids == ["d-0002"]


def test_503_with_retry_after(api: SendgridServer) -> None:
    api.script(server_error(503, retry_after=30))
    [result] = backend_for(api).send([make_email()])
    assert result.status == "retry" and result.retry_after == 30.0


def test_three_server_errors_in_a_row_stop_the_batch(api: SendgridServer) -> None:
    api.script(*[server_error()] * 3)
    results = backend_for(api).send([make_email(n) for n in range(5)])
    assert statuses(results) == ["retry"] * 5
    assert len(api.requests) == 3


def test_400_fails_that_email_with_the_servers_message(api: SendgridServer) -> None:
    message = "The from address does not match a verified Sender Identity."
    api.script(bad_request(message, "from"), ACCEPTED)
    results = backend_for(api).send([make_email(1), make_email(2)])
    assert results[0] == SendResult("d-0001", "failed", f"400 {message} (field: from)")
    assert results[1].status == "sent"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_pauses_and_spares_the_rest_of_the_batch(
    api: SendgridServer, status: int
) -> None:
    api.script(Reply(status, {"errors": [{"message": "The provided authorization is bad"}]}))
    results = backend_for(api).send([make_email(1), make_email(2)])
    assert results[0].status == "paused"
    assert f"{status} The provided authorization is bad" in results[0].reason
    assert results[1].status == "paused" and "not sent" in results[1].reason
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "inf"}, 86400.0),
        ({"Retry-After": "1e300"}, 86400.0),
        ({"Retry-After": "nan"}, None),
        ({"X-RateLimit-Reset": "99999999999999"}, 86400.0),
        ({"X-RateLimit-Reset": "inf"}, 86400.0),
        ({"X-RateLimit-Reset": str(int(NOW) + 60)}, 60.0),
    ],
)
def test_a_huge_or_infinite_wait_is_capped(
    api: SendgridServer, headers: dict[str, str], wait: float | None
) -> None:
    api.script(Reply(429, {"errors": [{"message": "slow down"}]}, headers))
    [result] = backend_for(api).send([make_email()])
    assert result.status == "retry" and result.retry_after == wait


def test_413_is_failed(api: SendgridServer) -> None:
    api.script(Reply(413, {"errors": [{"message": "too big"}]}))
    [result] = backend_for(api).send([make_email()])
    assert result == SendResult("d-0001", "failed", "413 too big")


def test_the_wrong_key_is_seen_by_the_server(api: SendgridServer) -> None:
    assert api.api_key != "SG.wrong"
    backend = SendgridBackend(SendgridConfig(host=api.url), api_key="SG.wrong")
    [result] = backend.send([make_email()])
    assert result.status == "paused" and "401 The provided authorization" in result.reason
    assert "SG.wrong" not in result.reason


def test_a_slow_server_times_out_as_retry(api: SendgridServer) -> None:
    # The server would hold the answer far longer than the test may take: only the
    # client's timeout can end the request, and the server sees the client hang up.
    api.script(Reply(202, delay=MAX_STALL))
    results = backend_for(api, timeout=0.3).send([make_email(1), make_email(2)])
    assert statuses(results) == ["retry", "retry"]
    assert "timed out" in results[0].reason
    assert "not sent" in results[1].reason  # a timeout stops the batch
    assert len(api.requests) == 1
    assert api.wait_for_hangups(1) == ["d-0001"], "client.timeout was not applied"


def test_connection_refused_is_retry(refused_port: int) -> None:
    config = SendgridConfig(host=f"http://127.0.0.1:{refused_port}")
    backend = SendgridBackend(config, api_key="SG.k")
    results = backend.send([make_email(1), make_email(2)])
    assert statuses(results) == ["retry", "retry"]
    assert "refused" in results[0].reason.lower()


def test_a_message_that_cannot_be_built_fails_alone(api: SendgridServer) -> None:
    results = backend_for(api).send([make_email(1, message_id="bad"), make_email(2)])
    assert statuses(results) == ["failed", "sent"]
    assert len(api.requests) == 1


def test_make_backend_needs_the_api_key_in_the_environment() -> None:
    config = DeliveryConfig(backend="sendgrid")
    with pytest.raises(DeliveryError, match="SENDGRID_API_KEY is not set"):
        make_backend(config, env={})
    backend = make_backend(config, env={"SENDGRID_API_KEY": "SG.k"})
    assert isinstance(backend, SendgridBackend) and backend.name == "sendgrid"
    custom = DeliveryConfig(backend="sendgrid", sendgrid=SendgridConfig(api_key_env="MY_KEY"))
    with pytest.raises(DeliveryError, match="MY_KEY is not set"):
        make_backend(custom, env={"SENDGRID_API_KEY": "SG.k"})
