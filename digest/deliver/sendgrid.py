"""The SendGrid backend: the v3 mail/send API through the `sendgrid` package.

One request per email (our bodies are personalised, so batching personalizations would
not save requests). The client has no timeout of its own: `SendGridAPIClient.client` is a
`python_http_client.Client`, whose `timeout` is copied into every request it builds, so we
set it there. Errors arrive as `python_http_client.exceptions.HTTPError` subclasses
(`.status_code`, `.headers`, `.body`) and network trouble as `URLError` / `TimeoutError`.

    2xx (202 Accepted)                 sent
    429                                retry, retry_after from Retry-After or X-RateLimit-Reset
    5xx, 408, network, timeout         retry (Retry-After honoured when given)
    401, 403                           paused: the key (or the sender) is refused for all
    400, 413, other 4xx                failed, reason = the body's first error message

A wait the server asks for is capped at `MAX_RETRY_AFTER` (an `inf` or a reset in the
year 5000 is a broken header, not a plan). A batch stops early, giving the emails not
yet tried "retry", when more requests could only make things worse or slower: after a
429 (rate limited until the reset), a network error or timeout, or three 5xx in a row;
after a 401/403 the rest are "paused" with it, unsent.
"""

from __future__ import annotations

import http.client
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any, Literal

from digest.config import DeliveryConfig, SendgridConfig
from digest.deliver.message import (
    OutgoingEmail,
    SendResult,
    clean_header_text,
    envelope_address,
    extra_headers,
    one_line,
    unique_by_delivery,
    wire_address,
)
from digest.errors import DeliveryError

CATEGORY = "papers-digest"
MAX_SERVER_ERRORS_IN_A_ROW = 3
#: The longest wait a Retry-After or X-RateLimit-Reset can ask for, in seconds (a day).
MAX_RETRY_AFTER = 86400.0
Status = Literal["sent", "retry", "failed", "paused"]
#: What a response means for the rest of the batch.
_After = Literal["go", "stop", "server-error"]


class SendgridBackend:
    """Sends each email as one v3 mail/send request."""

    name = "sendgrid"

    def __init__(
        self,
        config: SendgridConfig,
        *,
        api_key: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` gives epoch seconds, to turn X-RateLimit-Reset into a wait."""
        from sendgrid import SendGridAPIClient  # 60 ms of imports, only when used

        self.config = config
        self._clock = clock
        self._api = SendGridAPIClient(api_key, host=config.host.rstrip("/"))
        self._api.client.timeout = config.timeout

    def send(self, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
        """Post each email once, in order; one result per email."""
        emails = list(emails)
        todo, firsts = unique_by_delivery(emails)
        results: dict[int, SendResult] = {}
        server_errors = 0
        for pos, i in enumerate(todo):
            email = emails[i]
            try:
                body = request_body(email)
            except ValueError as exc:
                results[i] = SendResult(email.delivery_id, "failed", one_line(str(exc)))
                continue
            result, after = self._post(email.delivery_id, body)
            results[i] = result
            server_errors = server_errors + 1 if after == "server-error" else 0
            if after == "stop" or server_errors >= MAX_SERVER_ERRORS_IN_A_ROW:
                why = one_line(f"not sent: stopped after {result.reason}")
                rest: Status = "paused" if result.status == "paused" else "retry"
                for j in todo[pos + 1 :]:
                    results[j] = SendResult(emails[j].delivery_id, rest, why, result.retry_after)
                break
        return [results[first] for first in firsts]

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""

    def _post(self, delivery_id: str, body: dict[str, Any]) -> tuple[SendResult, _After]:
        """Send one request: its result, and what it means for the rest of the batch."""
        from python_http_client.exceptions import HTTPError

        try:
            response = self._api.send(body)
        except HTTPError as exc:
            return self._http_error(delivery_id, exc)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            reason = getattr(exc, "reason", None) or exc
            return SendResult(delivery_id, "retry", one_line(f"network: {reason}")), "stop"
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(delivery_id, "sent"), "go"
        # urllib raises for 4xx/5xx; anything else (a 3xx it did not follow) is odd but
        # not the message's fault.
        return SendResult(delivery_id, "retry", f"{status} unexpected response"), "go"

    def _http_error(self, delivery_id: str, exc: Any) -> tuple[SendResult, _After]:
        status = int(exc.status_code)
        headers = exc.headers
        reason = one_line(f"{status} {_first_error(exc.body) or exc.reason}")
        if status == 429:
            return SendResult(delivery_id, "retry", reason, self._retry_after(headers)), "stop"
        if status >= 500 or status == 408:
            retry_after = _retry_after_header(headers, self._clock)
            return SendResult(delivery_id, "retry", reason, retry_after), "server-error"
        if status in (401, 403):  # the key is wrong (or the sender unverified): for all
            why = one_line(f"SendGrid refused the API key or sender: {reason}; check [delivery]")
            return SendResult(delivery_id, "paused", why), "stop"
        return SendResult(delivery_id, "failed", reason), "go"

    def _retry_after(self, headers: Any) -> float | None:
        """Retry-After (seconds or an HTTP date), else X-RateLimit-Reset (epoch seconds)."""
        wait = _retry_after_header(headers, self._clock)
        if wait is not None:
            return wait
        reset = _header(headers, "X-RateLimit-Reset")
        try:
            return _capped(float(reset) - self._clock()) if reset else None
        except ValueError:
            return None


def _header(headers: Any, name: str) -> str | None:
    """A header from whatever `HTTPError.headers` holds (an HTTPMessage, or a dict)."""
    if headers is None:
        return None
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return None if value is None else str(value).strip()


def _retry_after_header(headers: Any, clock: Callable[[], float]) -> float | None:
    value = _header(headers, "Retry-After")
    if not value:
        return None
    try:
        return _capped(float(value))
    except ValueError:
        pass
    try:
        return _capped(parsedate_to_datetime(value).timestamp() - clock())
    except (TypeError, ValueError, OverflowError):
        return None


def _capped(seconds: float) -> float | None:
    """A wait in [0, MAX_RETRY_AFTER]; None for NaN (no usable wait at all)."""
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _first_error(body: bytes | str | None) -> str:
    """The first `errors[].message` of a SendGrid error body, with its field if named."""
    if not body:
        return ""
    try:
        data = json.loads(body)
        first = data["errors"][0]
        message = str(first.get("message") or "")
        field = first.get("field")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return text[:200]
    return f"{message} (field: {field})" if field else message


def request_body(email: OutgoingEmail) -> dict[str, Any]:
    """The v3 mail/send JSON for one email: text/plain content before text/html."""
    name, address = parseaddr(email.from_addr)
    if not envelope_address(email.from_addr):
        raise ValueError(f"from_addr has no address: {email.from_addr!r}")
    sender: dict[str, str] = {"email": address}
    if name:
        sender["name"] = clean_header_text(name)
    return {
        "personalizations": [{"to": [{"email": wire_address(email.to)}]}],
        "from": sender,
        "subject": clean_header_text(email.subject),
        "content": [
            {"type": "text/plain", "value": email.text},
            {"type": "text/html", "value": email.html},
        ],
        "headers": extra_headers(email),
        "custom_args": {"delivery_id": email.delivery_id},
        "categories": [CATEGORY],
    }


def from_config(config: DeliveryConfig, env: Mapping[str, str]) -> SendgridBackend:
    """The registry entry: the API key comes from the variable `api_key_env` names."""
    sg = config.sendgrid
    api_key = env.get(sg.api_key_env, "").strip()
    if not api_key:
        raise DeliveryError(
            f"delivery.sendgrid: environment variable {sg.api_key_env} is not set "
            "(it must hold the SendGrid API key)"
        )
    if not sg.host.startswith(("https://", "http://")):
        raise DeliveryError(f"delivery.sendgrid.host = {sg.host!r}: must be an http(s) URL")
    if not envelope_address(config.from_addr):
        raise DeliveryError(f"delivery.from = {config.from_addr!r}: no email address in it")
    return SendgridBackend(sg, api_key=api_key)
