"""What one outgoing digest email is, what became of it, and its MIME form.

`OutgoingEmail` and `SendResult` are the plain data every backend takes and gives;
`build_message` turns an `OutgoingEmail` into the RFC 5322 message the SMTP and outbox
backends write (the SendGrid backend sends the same parts and headers as JSON).

Header choices, and why:

- ``List-Unsubscribe`` (http(s) and/or mailto) and, when the URL is https,
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058): what Gmail and Yahoo
  require of bulk senders, and what shows the one-click "Unsubscribe" button.
- ``Auto-Submitted: auto-generated`` (RFC 3834 §5): the digest is written by a scheduled job,
  not a person, and this is the standard way to ask vacation/out-of-office responders not
  to answer an address nobody reads.
- No ``Precedence: bulk``: it was never standardised (RFC 2076 lists it as "use discouraged",
  RFC 3834 says not to rely on it); responders that honour it also honour the ``List-*`` and
  ``Auto-Submitted`` headers we send, and some filters read it as a spam signal.
- ``X-Digest-Delivery``: the opaque delivery id, so a bounce or complaint can be traced to
  a delivery without putting personal data in the message.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import parseaddr
from typing import Literal

__all__ = [
    "MESSAGE_POLICY",
    "OutgoingEmail",
    "SendResult",
    "boundary",
    "build_message",
    "clean_header_text",
    "envelope_address",
    "extra_headers",
    "list_unsubscribe",
    "one_line",
    "unique_by_delivery",
    "wire_address",
]

_HEADERS = HeaderRegistry()
#: Unicode categories that break a header line: controls, line and paragraph separators.
_BREAKING = frozenset(("Cc", "Zl", "Zp"))
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One rendered digest for one subscriber, ready for any backend."""

    #: Opaque id of this delivery (no personal data); header, category arg and file name.
    delivery_id: str
    #: The subscriber's normalised address.
    to: str
    #: "Name <addr>" as configured.
    from_addr: str
    #: May hold untrusted text (paper titles); control characters are removed when sent.
    subject: str
    #: text/plain body: the first part.
    text: str
    #: text/html body: the second (preferred) part.
    html: str
    #: "<...@...>", derived from delivery_id so it is stable across retries.
    message_id: str
    #: Timezone-aware time of the digest.
    date: datetime
    #: One-click unsubscribe URL; https adds List-Unsubscribe-Post ("" in previews).
    unsubscribe_url: str = ""
    #: "" or "mailto:..." for List-Unsubscribe.
    unsubscribe_mailto: str = ""


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one `OutgoingEmail`: a backend returns one per email, in order."""

    delivery_id: str
    #: "sent"; "retry" = transient, try again later; "failed" = permanent, do not retry;
    #: "paused" = the sender, the login or the API key was refused: not this message's
    #: fault and the same for every message, so the run stops and the delivery is left as
    #: it was (no attempt counted) until the operator fixes [delivery].
    status: Literal["sent", "retry", "failed", "paused"]
    #: One line: what the server (or the network) said.
    reason: str = ""
    #: Seconds to wait before retrying, when the server said so.
    retry_after: float | None = None


class _ListHeader(UnstructuredHeader):
    """An ASCII list of <URI>s folded only between items.

    The default policy folds a long token (a URL with a token in it) by turning it into
    RFC 2047 encoded-words, which breaks List-Unsubscribe; folding between items keeps
    every URI intact. Non-ASCII values fall back to the default folding.
    """

    def fold(self, *, policy: Policy) -> str:
        text = str(self)
        if not text.isascii():
            return super().fold(policy=policy)  # type: ignore[misc]  # BaseHeader.fold
        items = re.split(r"(?<=>)\s*,\s*(?=<)", text)
        name = self.name  # type: ignore[attr-defined]  # set by the header registry
        return f"{name}: " + f",{policy.linesep} ".join(items) + policy.linesep


# The registry builds header classes from these at run time; typeshed wants BaseHeader.
_HEADERS.map_to_type("list-unsubscribe", _ListHeader)  # type: ignore[arg-type]
_HEADERS.map_to_type("x-digest-delivery", _ListHeader)  # type: ignore[arg-type]
#: CRLF line ends as on the wire; cte_type="7bit" makes set_content pick 7bit,
#: quoted-printable or base64, so a relay without 8BITMIME takes the message unchanged.
MESSAGE_POLICY = policy.SMTP.clone(header_factory=_HEADERS, cte_type="7bit")


def clean_header_text(text: str) -> str:
    """`text` as one header-safe line: control and line-separator characters become spaces.

    Subjects carry paper titles, which are untrusted: "x\\r\\nBcc: evil@x" must stay text
    in the Subject, never become a second header. An RFC 2047 encoded word spelled in a
    title (`=?utf-8?b?...?=`) is broken with a zero-width space, so a mail client shows
    it as typed instead of decoding it into characters we removed.
    """
    if not text.isprintable():  # printable text holds no Cc, Zl or Zp: no need to look
        text = "".join(" " if unicodedata.category(ch) in _BREAKING else ch for ch in text)
    return " ".join(text.split()).replace("=?", "=\u200b?")


def one_line(text: str, limit: int = 300) -> str:
    """A server reply or error as one bounded line, for `SendResult.reason`."""
    line = clean_header_text(text)
    return line if len(line) <= limit else line[: limit - 1] + "…"


@functools.lru_cache(maxsize=64)  # the same sender for every message of a run
def envelope_address(from_addr: str) -> str:
    """The bare address in "Name <addr>" (the SMTP envelope sender); "" if there is none."""
    _, address = parseaddr(from_addr)
    return address if "@" in address else ""


def wire_address(address: str) -> str:
    """`address` with an internationalised domain in its ASCII (IDNA) form, when it can be.

    Any relay takes "jo@xn--exmple-cua.org"; "jo@exämple.org" needs SMTPUTF8. A non-ASCII
    local part has no ASCII form and is returned unchanged (the message then needs SMTPUTF8).
    """
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def _check_header(name: str, value: str) -> str:
    if not value.isprintable() and any(unicodedata.category(ch) in _BREAKING for ch in value):
        raise ValueError(f"{name}: control characters in {value!r}")
    return value


def list_unsubscribe(email: OutgoingEmail) -> str:
    """The List-Unsubscribe value: ``<https://...>, <mailto:...>`` (those present), or ""."""
    uris = []
    if email.unsubscribe_url:
        if not email.unsubscribe_url.startswith(("https://", "http://")):
            raise ValueError(f"unsubscribe_url must be http(s): {email.unsubscribe_url!r}")
        uris.append(email.unsubscribe_url)
    if email.unsubscribe_mailto:
        if not email.unsubscribe_mailto.startswith("mailto:"):
            raise ValueError(f"unsubscribe_mailto must be mailto: {email.unsubscribe_mailto!r}")
        uris.append(email.unsubscribe_mailto)
    for uri in uris:
        _check_header("List-Unsubscribe", uri)
        if any(ch in uri for ch in " <>,"):
            raise ValueError(f"List-Unsubscribe: URI must be escaped: {uri!r}")
    return ", ".join(f"<{uri}>" for uri in uris)


def extra_headers(email: OutgoingEmail) -> dict[str, str]:
    """Headers beyond From/To/Subject/Date, shared by the MIME and SendGrid forms."""
    if not _MESSAGE_ID.fullmatch(email.message_id):
        raise ValueError(f"message_id must look like <id@domain>: {email.message_id!r}")
    if not _DELIVERY_ID.fullmatch(email.delivery_id):
        raise ValueError(f"delivery_id must be letters, digits, . _ -: {email.delivery_id!r}")
    headers = {"Message-ID": email.message_id}
    unsubscribe = list_unsubscribe(email)
    if unsubscribe:
        headers["List-Unsubscribe"] = unsubscribe
    if email.unsubscribe_url.startswith("https://"):  # RFC 8058 one-click needs https
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers["Auto-Submitted"] = "auto-generated"
    headers["X-Digest-Delivery"] = email.delivery_id
    return headers


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The MIME message for `email`: multipart/alternative, text/plain first, then text/html.

    Raises ValueError when a field cannot be put in a header safely (a naive date, a
    malformed Message-ID, an address with a line break); the subject alone is cleaned
    instead, because it holds untrusted text by design.
    """
    if email.date.tzinfo is None or email.date.utcoffset() is None:
        raise ValueError(f"date must be timezone-aware: {email.date!r}")
    to = wire_address(_check_header("To", email.to))
    sender = _check_header("From", email.from_addr)
    # An address that stays non-ASCII (EAI) is only valid as raw UTF-8 (RFC 6532).
    eai = not (to.isascii() and envelope_address(sender).isascii())
    msg = EmailMessage(policy=MESSAGE_POLICY.clone(utf8=True) if eai else MESSAGE_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = clean_header_text(email.subject)
    msg["Date"] = email.date
    for name, value in extra_headers(email).items():
        msg[name] = value
    # cte=None lets the stdlib pick 7bit, quoted-printable or base64 (7-bit clean policy).
    msg.set_content(email.text, subtype="plain", charset="utf-8")
    # base64 for the HTML: quoted-printable would be chosen after encoding the body both
    # ways in pure Python (milliseconds a message); base64 is C and mail clients never
    # show the raw HTML source anyway.
    msg.add_alternative(email.html, subtype="html", charset="utf-8", cte="base64")
    for part in msg.iter_parts():
        del part["MIME-Version"]  # add_alternative copies it into the part; it belongs on top
    msg.set_boundary(boundary(email.delivery_id))
    return msg


def boundary(delivery_id: str) -> str:
    """The MIME boundary of a delivery's message: derived from its id, so the same email
    gives the same bytes, and never inside a part: "=_" occurs in neither quoted-printable
    nor base64 (the only encodings the parts use)."""
    return "=_papers-digest_" + hashlib.sha256(delivery_id.encode()).hexdigest()[:32]


def unique_by_delivery(emails: Sequence[OutgoingEmail]) -> tuple[list[int], list[int]]:
    """Positions of the first email of each delivery id, and for every position its first.

    Backends send each delivery once per call even if the caller lists it twice, then
    copy the result to the duplicates: `results[i] = results[firsts[i]]`.
    """
    first_of: dict[str, int] = {}
    firsts = [first_of.setdefault(e.delivery_id, i) for i, e in enumerate(emails)]
    return sorted(first_of.values()), firsts
