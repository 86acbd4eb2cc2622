"""Polite HTTP for live sources: timeouts, bounded retries, conditional GETs, a size cap.

`fetch(url, state=...)` returns the body and the validators (`ETag`, `Last-Modified`) to
keep for the next run; sending them back lets the server answer `304 Not Modified`,
which is "nothing new", not an error. The only I/O seam is the `httpx.Client` (pass one
with a `MockTransport` or point it at a local server in tests); time is injected through
`sleep` and the `HostGate`'s clock, so tests never wait.

What can go wrong, and what happens (every failure is one `SourceError` line that names
the URL, what happened and what to do):

    HTTP 304                      -> status "not_modified", empty body
    HTTP 429, 5xx                 -> retried with capped exponential backoff, honouring
                                     Retry-After; a Retry-After longer than the policy
                                     allows gives up at once ("try again later")
    connect/read timeout,         -> retried the same way
    connection error,
    body cut short
    other HTTP 4xx (404, 403 ...) -> SourceError at once: retrying will not help
    body larger than max_bytes    -> SourceError at once (the stream is abandoned)

Politeness (`digest.sources.polite`): arXiv asks for one request every 3 seconds at
most; `HostGate` spaces the requests to each host (every `*.arxiv.org` host: 3 s; other
hosts: no gap).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Literal
from urllib.parse import urlsplit

import httpx

from digest.errors import SourceError
from digest.sources.polite import (  # noqa: F401  (ARXIV_MIN_INTERVAL, default_interval: part of this module's API)
    ARXIV_MIN_INTERVAL,
    HostGate,
    RetryPolicy,
    Sleep,
    default_interval,
)

#: Responses larger than this are refused (decoded size: a gzip bomb is refused too).
DEFAULT_MAX_BYTES = 20_000_000
#: Connect quickly or give up; a listing page or feed never needs more than 30 s.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _version() -> str:
    try:
        return version("papers-digest")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.1"


def user_agent(contact: str = "") -> str:
    """The User-Agent we send: the project and version, and who to contact if given.

    Servers that rate-limit or block want to know who is calling; a contact (an email
    address or URL from the configuration) lets an operator reach the person running it.
    """
    who = f"contact: {contact}" if contact else "contact: see config"
    return f"papers-digest/{_version()} (research digest; {who})"


USER_AGENT = user_agent()


@dataclass(frozen=True, slots=True)
class FetchState:
    """The validators a server gave for a URL, kept between runs to make conditional GETs."""

    etag: str | None = None  #: sent back as If-None-Match
    last_modified: str | None = None  #: sent back as If-Modified-Since (verbatim)

    def request_headers(self) -> dict[str, str]:
        """The conditional headers for the next request (none when nothing is known)."""
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def to_json(self) -> str:
        """A compact JSON text for the store (`fetch_state` table)."""
        return json.dumps({"etag": self.etag, "last_modified": self.last_modified}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> FetchState:
        """The state stored by `to_json`; empty for None, "" or unreadable text.

        An unreadable state is not worth failing a run for: the worst case is one
        unconditional GET, after which a fresh state is stored.
        """
        if not text:
            return cls()
        try:
            value = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(value, dict):
            return cls()
        etag, modified = value.get("etag"), value.get("last_modified")
        return cls(
            etag=etag if isinstance(etag, str) and etag else None,
            last_modified=modified if isinstance(modified, str) and modified else None,
        )


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one `fetch` got: the body (empty when not modified) and the state to store."""

    url: str  #: the final URL, after redirects
    status: Literal["ok", "not_modified"]
    data: bytes
    #: Response headers, names lower-cased (ready for `feedparser.parse(response_headers=)`).
    headers: dict[str, str]
    state: FetchState  #: store this for the next run of the source
    attempts: int = 1  #: requests made, retries included

    @property
    def modified(self) -> bool:
        return self.status == "ok"


#: The retries of a `fetch` not given a policy (frozen: sharing it is safe).
DEFAULT_RETRY = RetryPolicy()
#: The process-wide gate used when `fetch` is not given one.
_SHARED_GATE = HostGate()


@dataclass(frozen=True, slots=True)
class _RetryLater:
    """A response or failure worth retrying: why, and how long the server asked us to wait."""

    problem: str
    retry_after: float | None = None


def fetch(
    url: str,
    *,
    state: FetchState | None = None,
    client: httpx.Client | None = None,
    gate: HostGate | None = None,
    sleep: Sleep = time.sleep,
    max_bytes: int = DEFAULT_MAX_BYTES,
    user_agent: str = USER_AGENT,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    retry: RetryPolicy = DEFAULT_RETRY,
    accept: str | None = None,
) -> FetchResult:
    """GET `url` politely; returns the body and the new `FetchState`, or raises SourceError.

    `state` holds the validators of the previous fetch (sent as If-None-Match /
    If-Modified-Since). `client` is closed only if this call created it. `gate` spaces
    requests per host (the process-wide one by default); `sleep` is used for the backoff
    between retries. `accept` sets the Accept header (e.g. "application/json").
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"{url}: not an http(s) URL; check the source's url in config.toml")
    headers = {"User-Agent": user_agent, **(state or FetchState()).request_headers()}
    if accept:
        headers["Accept"] = accept
    own_client = client is None
    http = client or httpx.Client(follow_redirects=True, timeout=timeout)
    try:
        return _fetch_with_retries(
            http,
            url,
            parts.hostname,
            headers=headers,
            state=state or FetchState(),
            gate=gate or _SHARED_GATE,
            sleep=sleep,
            max_bytes=max_bytes,
            timeout=timeout,
            retry=retry,
        )
    finally:
        if own_client:
            http.close()


def _fetch_with_retries(
    http: httpx.Client,
    url: str,
    host: str,
    *,
    headers: dict[str, str],
    state: FetchState,
    gate: HostGate,
    sleep: Sleep,
    max_bytes: int,
    timeout: httpx.Timeout | float,
    retry: RetryPolicy,
) -> FetchResult:
    attempts = max(1, retry.attempts)
    problem = "no attempt made"
    for attempt in range(1, attempts + 1):
        gate.wait(host)
        outcome = _attempt(http, url, headers, state, max_bytes, timeout)
        if isinstance(outcome, FetchResult):
            return FetchResult(
                url=outcome.url,
                status=outcome.status,
                data=outcome.data,
                headers=outcome.headers,
                state=outcome.state,
                attempts=attempt,
            )
        problem = outcome.problem
        if attempt == attempts:
            break
        delay = retry.delay(attempt)
        if outcome.retry_after is not None:
            if outcome.retry_after > retry.max_retry_after:
                raise SourceError(
                    f"{url}: {problem}; the server asks to wait {outcome.retry_after:.0f} s "
                    "(Retry-After), longer than we wait in one run; try again later"
                )
            delay = outcome.retry_after
        sleep(delay)
    raise SourceError(f"{url}: {problem} (gave up after {attempts} attempts); try again later")


def _attempt(
    http: httpx.Client,
    url: str,
    headers: dict[str, str],
    state: FetchState,
    max_bytes: int,
    timeout: httpx.Timeout | float,
) -> FetchResult | _RetryLater:
    """One request: a result, a reason to retry, or a SourceError for what retrying won't fix."""
    try:
        with http.stream("GET", url, headers=headers, timeout=timeout) as response:
            status = response.status_code
            received = {k.lower(): v for k, v in response.headers.items()}
            if status == 304:
                return FetchResult(
                    url=str(response.url),
                    status="not_modified",
                    data=b"",
                    headers=received,
                    state=FetchState(
                        etag=received.get("etag") or state.etag,
                        last_modified=received.get("last-modified") or state.last_modified,
                    ),
                )
            if status == 429 or 500 <= status <= 599:
                return _RetryLater(
                    f"HTTP {status} {response.reason_phrase}".rstrip(),
                    retry_after=_retry_after(received),
                )
            if not 200 <= status <= 299:
                raise SourceError(f"{url}: HTTP {status} {response.reason_phrase}; {_hint(status)}")
            data = _read_capped(response, url, max_bytes)
            return FetchResult(
                url=str(response.url),
                status="ok",
                data=data,
                headers=received,
                state=FetchState(
                    etag=received.get("etag"), last_modified=received.get("last-modified")
                ),
            )
    except httpx.TimeoutException as exc:
        return _RetryLater(f"timed out ({_timeout_kind(exc)})")
    except httpx.RemoteProtocolError as exc:
        return _RetryLater(f"connection broke off mid-response ({_first_line(exc)})")
    except httpx.TransportError as exc:
        return _RetryLater(f"cannot connect ({_first_line(exc)})")
    except httpx.TooManyRedirects:
        raise SourceError(f"{url}: too many redirects; check the URL") from None
    except httpx.DecodingError as exc:
        raise SourceError(
            f"{url}: the response body cannot be decoded ({_first_line(exc)}); "
            "the server sent a broken compressed body"
        ) from None
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: request failed ({_first_line(exc)})") from None


def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    """The body, refusing it as soon as it is known to be larger than `max_bytes`.

    Compressed bodies are inflated here, chunk by chunk with a bounded output size, from
    the raw stream: httpx would inflate each chunk whole before we could count it, so a
    tiny gzip bomb could take gigabytes first.
    """
    limit = f"the {max_bytes:,}-byte limit; is this the right URL? (or raise the limit)"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(f"{url}: response is {int(declared):,} bytes, over {limit}")
    encodings = [
        e.strip().lower()
        for e in response.headers.get("content-encoding", "").split(",")
        if e.strip() and e.strip().lower() != "identity"
    ]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "x-gzip", "deflate")):
        raise SourceError(
            f"{url}: unsupported Content-Encoding {response.headers['content-encoding']!r}"
        )
    if response.is_stream_consumed:  # built in memory (a MockTransport): already decoded
        if len(response.content) > max_bytes:
            raise SourceError(f"{url}: response is over {limit}")
        return response.content
    inflate = zlib.decompressobj(47) if encodings else None  # 47: gzip or zlib header
    chunks: list[bytes] = []
    size = 0
    for raw in response.iter_raw():
        pieces = [raw]
        if inflate is not None:
            try:
                pieces = [inflate.decompress(raw, max_bytes + 1 - size)]
                while inflate.unconsumed_tail and size + len(pieces[-1]) <= max_bytes:
                    size += len(pieces[-1])
                    chunks.append(pieces.pop())
                    pieces.append(inflate.decompress(inflate.unconsumed_tail, max_bytes + 1 - size))
            except zlib.error:
                raise SourceError(
                    f"{url}: the server sent a broken compressed body; try again later"
                ) from None
        for piece in pieces:
            size += len(piece)
            if size > max_bytes:
                raise SourceError(f"{url}: response is over {limit}")
            chunks.append(piece)
    return b"".join(chunks)


def _retry_after(headers: dict[str, str]) -> float | None:
    """Seconds the server asked us to wait: `Retry-After: 120` or an HTTP date.

    A date is measured against the response's own `Date` header, so our clock never
    enters into it; without a `Date` it cannot be measured and is ignored.
    """
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        until = parsedate_to_datetime(value)
        now = parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if not isinstance(until, datetime) or not isinstance(now, datetime):
        return None
    if (until.tzinfo is None) != (now.tzinfo is None):
        return None
    return max(0.0, (until - now).total_seconds())


def _hint(status: int) -> str:
    if status in (404, 410):
        return "check the source's url in config.toml"
    if status in (401, 403):
        return "the server refused access; check the URL (or whether it blocks this client)"
    return "the server rejected the request; check the source's url in config.toml"


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection within the connect timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "no data within the read timeout"
    return type(exc).__name__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
