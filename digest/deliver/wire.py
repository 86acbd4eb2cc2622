"""The wire bytes of an `OutgoingEmail`, written directly: the fast path for big sends.

`build_message` goes through the stdlib's EmailMessage and generator, which costs about
2 ms a message in pure Python, more than everything else a send does. This module
writes the same message (same headers, same parts in the same order, the same
content-derived boundary) straight to bytes: headers RFC 2047-encoded where they are not
ASCII and folded under 78 columns, text/plain quoted-printable and text/html base64
through binascii (C). Addresses that need SMTPUTF8 go through `build_message` instead.
Tests parse both forms back and compare them.

No line of these bytes starts with "." (headers start with a name or a space, base64
has no dot, and the quoted-printable text writes a dot that would start a line as
"=2E"), so SMTP's DATA needs no dot-stuffing: the SMTP backend sends them as they are
instead of scanning every message for a line to stuff.
"""

from __future__ import annotations

import binascii
import functools
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr

from digest.deliver.message import (
    OutgoingEmail,
    _check_header,
    clean_header_text,
    envelope_address,
    extra_headers,
    wire_address,
)
from digest.deliver.message import (
    boundary as mime_boundary,
)


@functools.lru_cache(maxsize=64)
def _address_header(value: str) -> str:
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8") if name else addr


def _date(when: datetime) -> str:
    """The Date header's value; a send dates every message with its one `now`."""
    return _date_at(when, when.utcoffset())


@functools.lru_cache(maxsize=64)
def _date_at(when: datetime, offset: object) -> str:
    # Keyed by the offset too: 12:00+00:00 equals 13:00+01:00, but is written otherwise.
    return format_datetime(when)


def _encode(name: str, value: str) -> str:
    """`Name: value` folded; non-ASCII text as RFC 2047 base64 encoded-words.

    The stdlib's Header picks between Q and B encoding by encoding both in pure Python
    (a millisecond for a subject); B words are made here directly: at most 42 bytes of
    whole UTF-8 characters each (cut before a continuation byte), so a folded line stays
    within 78 characters.
    """
    if value.isascii():
        return _fold(f"{name}: {value}")
    data = value.encode("utf-8")
    words, start = [], 0
    while start < len(data):  # cut at most 42 bytes, never inside a character
        end = min(start + 42, len(data))
        while end < len(data) and 0x80 <= data[end] < 0xC0:  # a continuation byte
            end -= 1
        words.append(data[start:end])
        start = end
    encoded = ["=?utf-8?b?" + binascii.b2a_base64(w, newline=False).decode() + "?=" for w in words]
    return f"{name}: " + "\r\n ".join(encoded)


def _fold(line: str, width: int = 78) -> str:
    """An ASCII header line folded before spaces so each line fits in `width` columns
    where it can (a word longer than that stays whole: RFC 5322 allows 998)."""
    if len(line) <= width:
        return line
    out: list[str] = []
    current = ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = " " + word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n".join(out)


def _list_unsubscribe(value: str) -> str:
    """Fold only between the <...> items: encoded-words would break the URLs."""
    return "List-Unsubscribe: " + ",\r\n ".join(v.strip() for v in value.split(","))


def _lines(text: str) -> bytes:
    """UTF-8, newline-normalised, ending with a newline, as the stdlib's set_content does
    (bytes.splitlines: only CR and LF end a line, not U+2028 and friends)."""
    data = text.encode("utf-8")
    if b"\r" in data:
        return b"\n".join(data.splitlines()) + b"\n"
    return data if data.endswith(b"\n") else data + b"\n"


def _base64(data: bytes) -> bytes:
    """Base64 in lines of 76 characters joined by CRLF (no CRLF after the last one).

    The lines are cut as a numpy array of 78-byte rows (76 + CRLF), in C: slicing the
    encoded bytes in a Python loop cost more than encoding them.
    """
    import numpy as np  # here: commands that send nothing need not load numpy

    encoded = binascii.b2a_base64(data, newline=False)
    full = len(encoded) // 76
    rows = np.empty((full, 78), dtype=np.uint8)
    rows[:, :76] = np.frombuffer(encoded, dtype=np.uint8, count=full * 76).reshape(full, 76)
    rows[:, 76:] = (13, 10)
    tail = encoded[full * 76 :]
    body = rows.tobytes()
    return body + tail if tail else body[:-2]


#: binascii's limit: 76 columns, a soft break's "=" included.
_QP_COLUMNS = 76


def _no_leading_dot(encoded: bytes) -> bytes:
    """One line's quoted-printable (soft breaks as "=\\r\\n") with every physical line
    that would start with "." starting "=2E" instead (the same character once decoded),
    still within 76 columns: what no longer fits moves to the next piece.

    Why: SMTP ends DATA at a line holding only ".", so a client doubles every dot that
    starts a line; bytes without one go out as they are (RFC 2045 lets any octet be
    written "=XX"). Only lines that need it come here (a soft break before a dot: about
    half of the rating-link lines, full of dots), so it works on pieces, not bytes."""
    pieces = encoded.split(b"=\r\n")  # a literal "=" is always escaped: these are breaks
    out: list[bytes] = []
    carry = b""
    for n, piece in enumerate(pieces):
        piece = carry + piece
        carry = b""
        last = n == len(pieces) - 1
        while True:
            if piece.startswith(b"."):
                piece = b"=2E" + piece[1:]
            if len(piece) <= (_QP_COLUMNS if last else _QP_COLUMNS - 1):
                break
            cut = _QP_COLUMNS - 1  # a piece that goes on: 75 columns and its "="
            if piece[cut - 1] == 0x3D:  # never inside an escape ("=XX")
                cut -= 1
            elif piece[cut - 2] == 0x3D:
                cut -= 2
            if not last:
                piece, carry = piece[:cut], piece[cut:]
                break
            out.append(piece[:cut])
            piece = piece[cut:]
        out.append(piece)
    return b"=\r\n".join(out)


def _qp_line(line: bytes) -> bytes:
    """One line's quoted-printable, as it stands in a body: followed by its newline
    (which decides where a long line breaks), here taken off again; soft breaks CRLF."""
    got = binascii.b2a_qp(line + b"\n", istext=True)[:-1].replace(b"\n", b"\r\n")
    return _no_leading_dot(got) if got.startswith(b".") or b"\n." in got else got


class _LineCache:
    """Quoted-printable of whole lines, kept in two generations: a line asked for again
    moves to the young one, and when the young one is full the old one is dropped. The
    lines every reader shares (a paper's title, its why-line, its links) stay; a line
    only one reader has (their rating links) is gone two generations later."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.young: dict[bytes, bytes] = {}
        self.old: dict[bytes, bytes] = {}

    def encode(self, line: bytes) -> bytes:
        got = self.young.get(line)
        if got is None:
            got = self.old.get(line)
            if got is None:
                got = _qp_line(line)
            if len(self.young) >= self.limit:
                self.old, self.young = self.young, {}
            self.young[line] = got
        return got


#: Lines a send keeps encoded (two generations of this many: ~10 MB at most).
_QP_LINES = _LineCache(30_000)


def _quoted_printable(text: str) -> bytes:
    """The text/plain body, quoted-printable with CRLF line ends.

    binascii's encoder (C, but ~10 us a KB) decides each output byte from its own line
    alone when the data holds no CR (`_lines` makes sure) and ends with a newline, so a
    body is encoded line by line and each distinct line once: readers share most lines
    of their digests. Equal to encoding the whole body at once (tests check) but for a
    dot that would start a line, written "=2E" (`_no_leading_dot`).
    """
    body = _lines(text)  # no CR left in it: each line is encoded alone
    # The cache's young generation answers most lines without a Python call each (a
    # method call a line cost more than the dict lookup); a miss goes through `encode`.
    young, encode = _QP_LINES.young.get, _QP_LINES.encode
    lines = body.split(b"\n")
    return b"\r\n".join([(young(line) or encode(line)) if line else b"" for line in lines])


def message_bytes(email: OutgoingEmail) -> bytes | None:
    """The message as CRLF bytes, or None when it needs SMTPUTF8 (use build_message).

    Raises ValueError for the same unsafe fields `build_message` refuses.
    """
    if email.date.tzinfo is None or email.date.utcoffset() is None:
        raise ValueError(f"date must be timezone-aware: {email.date!r}")
    to = wire_address(_check_header("To", email.to))
    sender = _check_header("From", email.from_addr)
    if not (to.isascii() and envelope_address(sender).isascii()):
        return None
    boundary = mime_boundary(email.delivery_id)
    lines = [
        f"From: {_address_header(sender)}",
        f"To: {to}",
        _encode("Subject", clean_header_text(email.subject)),
        f"Date: {_date(email.date)}",
    ]
    for name, value in extra_headers(email).items():
        lines.append(_list_unsubscribe(value) if name == "List-Unsubscribe" else f"{name}: {value}")
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
    ]
    head = "\r\n".join(lines).encode("ascii") + b"\r\n"
    html_head = (
        f"\r\n--{boundary}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii")
    return b"".join(
        [
            head,
            _quoted_printable(email.text),
            html_head,
            _base64(_lines(email.html)),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
