"""Polite fetching against a real local HTTP server (and a MockTransport for arXiv hosts)."""

from __future__ import annotations

import httpx
import pytest

from digest.errors import SourceError
from digest.sources.fetch import (
    ARXIV_MIN_INTERVAL,
    FetchState,
    HostGate,
    RetryPolicy,
    default_interval,
    fetch,
    user_agent,
)

from .http_fixture_server import MAX_STALL, FixtureServer, Huge, Reply, Slow, Static, Truncated

LAST_MODIFIED = "Wed, 15 Oct 2025 06:00:00 GMT"


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server(http_server: FixtureServer) -> FixtureServer:
    """The session's HTTP fixture server, with no routes and no requests yet."""
    return http_server


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def get(url: str, fake: FakeTime, **kwargs: object) -> object:
    """fetch() with fake time, no politeness gap for 127.0.0.1 and short timeouts."""
    kwargs.setdefault("gate", HostGate(clock=fake.clock, sleep=fake.sleep))
    kwargs.setdefault("timeout", 2.0)
    return fetch(url, sleep=fake.sleep, **kwargs)  # type: ignore[arg-type]


# -- conditional GETs -----------------------------------------------------------------


def test_first_fetch_sends_user_agent_and_keeps_validators(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route(
        "/papers.json",
        Static(b"[]", "application/json", etag='"v1"', last_modified=LAST_MODIFIED),
    )
    result = get(url, fake)
    assert result.status == "ok" and result.modified
    assert result.data == b"[]"
    assert result.headers["content-type"] == "application/json"
    assert result.state == FetchState(etag='"v1"', last_modified=LAST_MODIFIED)
    (request,) = server.requests
    assert request.headers["user-agent"].startswith("papers-digest/")
    assert "research digest" in request.headers["user-agent"]
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers


def test_validators_are_sent_back_and_304_is_not_modified(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route("/feed", Static(b"<rss/>", etag='"v1"', last_modified=LAST_MODIFIED))
    first = get(url, fake)
    second = get(url, fake, state=first.state)
    assert second.status == "not_modified" and not second.modified
    assert second.data == b""
    assert second.state == first.state
    headers = server.requests[-1].headers
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == LAST_MODIFIED
    assert fake.sleeps == []


def test_last_modified_alone_gives_304(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route("/page", Static(b"<html></html>", last_modified=LAST_MODIFIED))
    state = get(url, fake).state
    assert state == FetchState(etag=None, last_modified=LAST_MODIFIED)
    assert get(url, fake, state=state).status == "not_modified"


def test_changed_document_gives_200_and_new_validators(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route("/feed", Static(b"new", etag='"v2"'))
    result = get(url, fake, state=FetchState(etag='"v1"'))
    assert (result.status, result.data, result.state.etag) == ("ok", b"new", '"v2"')


def test_fetch_state_json_round_trip() -> None:
    state = FetchState(etag='W/"abc"', last_modified=LAST_MODIFIED)
    assert FetchState.from_json(state.to_json()) == state
    assert FetchState.from_json(FetchState().to_json()) == FetchState()
    for junk in (None, "", "not json", "[1, 2]", '{"etag": 5}'):
        assert FetchState.from_json(junk) == FetchState()
    assert FetchState().request_headers() == {}


# -- retries ---------------------------------------------------------------------------


def test_server_error_is_retried_with_backoff(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route("/flaky", Reply(500, b"oops"), Reply(502), Reply(200, b"fine"))
    result = get(url, fake)
    assert (result.data, result.attempts) == (b"fine", 3)
    assert fake.sleeps == [1.0, 2.0]
    assert len(server.requests) == 3


def test_retry_after_seconds_is_honoured(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route(
        "/limited", Reply(429, b"slow down", {"Retry-After": "7"}), Reply(200, b"ok")
    )
    result = get(url, fake)
    assert result.data == b"ok"
    assert fake.sleeps == [7.0]


def test_retry_after_http_date_is_measured_against_the_response_date(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route(
        "/limited",
        Reply(
            503,
            b"",
            {
                "Date": "Wed, 15 Oct 2025 06:00:00 GMT",
                "Retry-After": "Wed, 15 Oct 2025 06:00:12 GMT",
            },
        ),
        Reply(200, b"ok"),
    )
    assert get(url, fake).data == b"ok"
    assert fake.sleeps == [12.0]


def test_retry_after_beyond_the_policy_gives_up_at_once(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route("/limited", Reply(429, b"", {"Retry-After": "3600"}), Reply(200, b"ok"))
    with pytest.raises(SourceError, match=r"/limited: HTTP 429 .*3600 s.*try again later"):
        get(url, fake)
    assert len(server.requests) == 1
    assert fake.sleeps == []


def test_persistent_server_errors_give_one_clear_line(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route("/down", Reply(503))
    with pytest.raises(SourceError) as info:
        get(url, fake, retry=RetryPolicy(attempts=3, backoff=0.5))
    message = str(info.value)
    assert message.startswith(url)
    assert "HTTP 503" in message and "gave up after 3 attempts" in message
    assert "\n" not in message
    assert fake.sleeps == [0.5, 1.0]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(attempts=10, backoff=1.0, max_backoff=5.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_client_errors_are_not_retried(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route("/gone", Reply(404, b"not here"))
    with pytest.raises(SourceError, match=r"/gone: HTTP 404 Not Found; check the source's url"):
        get(url, fake)
    assert len(server.requests) == 1


# -- broken transfers --------------------------------------------------------------------


def test_timeout_becomes_source_error(server: FixtureServer, fake: FakeTime) -> None:
    # The server would hold each request far longer than the test may take: only the
    # client's read timeout can end it, and the server sees the client hang up.
    url = server.route("/slow", Slow(MAX_STALL))
    with pytest.raises(SourceError, match=r"/slow: timed out \(no data within the read timeout\)"):
        get(url, fake, timeout=0.2, retry=RetryPolicy(attempts=2))
    assert len(server.requests) == 2
    assert server.wait_for_hangups(2) == ["/slow", "/slow"]
    assert fake.sleeps == [1.0]  # the backoff between the two attempts


def test_slow_then_fast_succeeds(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route("/slow", Slow(MAX_STALL), Reply(200, b"ok"))
    assert get(url, fake, timeout=0.2).data == b"ok"
    assert server.wait_for_hangups(1) == ["/slow"]


def test_truncated_body_is_retried(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route("/cut", Truncated(b"[{", declared=100), Reply(200, b"[]"))
    result = get(url, fake)
    assert (result.data, result.attempts) == (b"[]", 2)


def test_persistently_truncated_body_is_a_source_error(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route("/cut", Truncated(b"[{", declared=100))
    with pytest.raises(SourceError, match="connection broke off mid-response"):
        get(url, fake, retry=RetryPolicy(attempts=2))


def test_declared_oversize_is_refused_without_reading(
    server: FixtureServer, fake: FakeTime
) -> None:
    url = server.route("/big", Huge(5_000_000))
    with pytest.raises(
        SourceError, match=r"/big: response is 5,000,000 bytes, over the 1,000-byte"
    ):
        get(url, fake, max_bytes=1_000)
    assert len(server.requests) == 1


def test_streamed_oversize_is_cut_off(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route("/big", Huge(2_000_000, declare=False))
    with pytest.raises(SourceError, match=r"/big: response is over the 100,000-byte limit"):
        get(url, fake, max_bytes=100_000)
    assert len(server.requests) == 1


def test_connection_refused_is_a_source_error(fake: FakeTime, refused_port: int) -> None:
    with pytest.raises(SourceError, match=r"cannot connect .*gave up after 2 attempts"):
        get(f"http://127.0.0.1:{refused_port}/x", fake, retry=RetryPolicy(attempts=2))


def test_redirects_are_followed(server: FixtureServer, fake: FakeTime) -> None:
    server.route("/new", Reply(200, b"here"))
    url = server.route("/old", Reply(301, b"", {"Location": "/new"}))
    result = get(url, fake)
    assert result.data == b"here"
    assert result.url.endswith("/new")


def test_not_an_http_url() -> None:
    with pytest.raises(SourceError, match="not an http"):
        fetch("file:///etc/passwd")


def test_accept_header_is_sent(server: FixtureServer, fake: FakeTime) -> None:
    url = server.route("/api", Reply(200, b"[]"))
    get(url, fake, accept="application/json", user_agent=user_agent("me@example.org"))
    headers = server.requests[0].headers
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].endswith("(research digest; contact: me@example.org)")


# -- politeness --------------------------------------------------------------------------


def test_arxiv_hosts_get_three_seconds() -> None:
    assert default_interval("rss.arxiv.org") == ARXIV_MIN_INTERVAL == 3.0
    assert default_interval("export.arxiv.org") == 3.0
    assert default_interval("ARXIV.ORG.") == 3.0
    assert default_interval("huggingface.co") == 0.0
    assert default_interval("notarxiv.org") == 0.0


def test_requests_to_arxiv_are_spaced_by_the_gate(fake: FakeTime) -> None:
    seen: list[tuple[float, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((fake.now, request.url.host))
        return httpx.Response(200, content=b"<rss/>")

    gate = HostGate(clock=fake.clock, sleep=fake.sleep)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        for url in (
            "https://rss.arxiv.org/rss/cs.CL",
            "https://rss.arxiv.org/rss/cs.LG",
            "https://huggingface.co/api/daily_papers",
            "https://rss.arxiv.org/rss/cs.CV",
        ):
            fetch(url, client=client, gate=gate, sleep=fake.sleep)
    assert seen == [
        (1000.0, "rss.arxiv.org"),
        (1003.0, "rss.arxiv.org"),
        (1003.0, "huggingface.co"),
        (1006.0, "rss.arxiv.org"),
    ]
    assert fake.sleeps == [3.0, 3.0]


def test_gate_counts_time_already_passed(fake: FakeTime) -> None:
    gate = HostGate(clock=fake.clock, sleep=fake.sleep)
    assert gate.wait("arxiv.org") == 0.0
    fake.now += 2.0  # parsing took two seconds
    assert gate.wait("arxiv.org") == pytest.approx(1.0)
    fake.now += 10.0
    assert gate.wait("arxiv.org") == 0.0


def test_retries_to_arxiv_are_gated_too(fake: FakeTime) -> None:
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(fake.now)
        if len(calls) == 1:
            return httpx.Response(503)
        return httpx.Response(200, content=b"ok")

    gate = HostGate(clock=fake.clock, sleep=fake.sleep)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        result = fetch(
            "https://export.arxiv.org/api/query",
            client=client,
            gate=gate,
            sleep=fake.sleep,
            retry=RetryPolicy(backoff=1.0),
        )
    assert result.data == b"ok"
    # The 1 s backoff is not enough for arXiv: the gate adds the other 2 s.
    assert calls == [1000.0, 1003.0]


def test_gzip_is_inflated_within_the_cap(server: FixtureServer) -> None:
    import gzip
    import resource

    from digest.errors import SourceError as _SourceError

    small = gzip.compress(b"hello " * 1000)
    one_layer = gzip.compress(b"\0" * 50_000_000)
    bomb = gzip.compress(one_layer)  # 50 MB inside two layers
    server.route("/ok", Reply(200, small, {"Content-Encoding": "gzip"}))
    server.route("/bomb", Reply(200, one_layer, {"Content-Encoding": "gzip"}))
    server.route("/double", Reply(200, bomb, {"Content-Encoding": "gzip, gzip"}))
    assert fetch(server.url("/ok"), sleep=lambda s: None).data == b"hello " * 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(_SourceError, match="over the 1,000,000-byte limit"):
        fetch(server.url("/bomb"), sleep=lambda s: None, max_bytes=1_000_000)
    with pytest.raises(_SourceError, match="unsupported Content-Encoding"):
        fetch(server.url("/double"), sleep=lambda s: None)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 50  # never inflated past the cap
