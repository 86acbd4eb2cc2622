"""The fast wire form says exactly what the stdlib EmailMessage says: same headers, same
parts in the same order, same decoded content; CRLF only, lines within 78 columns but
for an unbreakable URL (within RFC 5322's 998)."""

from __future__ import annotations

import email
from dataclasses import replace
from email import policy

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.deliver import build_message
from digest.deliver.message import clean_header_text
from digest.deliver.wire import message_bytes

from .factories import make_email

HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
    "X-Digest-Delivery",
    "MIME-Version",
]


def _parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def assert_same(out: object) -> None:
    raw = message_bytes(out)  # type: ignore[arg-type]
    assert raw is not None
    fast, slow = _parse(raw), _parse(build_message(out).as_bytes())  # type: ignore[arg-type]
    for name in HEADERS:
        if name == "Subject":  # the stdlib may drop a space between encoded words; we don't
            assert "".join(str(fast[name]).split()) == "".join(str(slow[name]).split())
            assert str(fast[name]) == clean_header_text(out.subject)  # type: ignore[attr-defined]
        else:
            assert str(fast[name]) == str(slow[name]), name
    assert [p.get_content_type() for p in fast.iter_parts()] == ["text/plain", "text/html"]
    assert [p.get_content_type() for p in slow.iter_parts()] == ["text/plain", "text/html"]
    for kind in ("plain", "html"):
        a = fast.get_body((kind,)).get_content().replace("\r\n", "\n")
        b = slow.get_body((kind,)).get_content().replace("\r\n", "\n")
        assert a == b
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert not raw.startswith(b".") and b"\n." not in raw  # nothing for SMTP to dot-stuff
    long_lines = [line for line in raw.split(b"\r\n") if len(line) > 78]
    assert all(len(line) <= 998 and b"://" in line for line in long_lines)  # only a URL


def test_a_digest_email_is_the_same_either_way() -> None:
    long_html = "<p>" + "Ünïcödé & <b>bold</b> text " * 2000 + "</p>"
    assert_same(replace(make_email(1), html=long_html, subject="Today — 12 new papers ✓"))
    assert_same(replace(make_email(2), from_addr="Papers Dïgest <digest@example.org>"))


@settings(max_examples=60, deadline=None)
@given(subject=st.text(max_size=300), text=st.text(max_size=2000))
def test_any_subject_and_text(subject: str, text: str) -> None:
    out = replace(make_email(3), subject=subject, text=text)
    assert_same(out)
    assert len(_parse(message_bytes(out)).get_all("Subject") or []) == 1  # type: ignore[arg-type]


def test_an_internationalised_mailbox_takes_the_stdlib_path() -> None:
    assert message_bytes(replace(make_email(4), to="jörg@exämple.org")) is None


def test_an_encoded_word_in_a_title_is_shown_as_typed() -> None:
    out = replace(make_email(5), subject="Paper =?utf-8?b?QmNjOiBldmls?= é")
    for raw in (message_bytes(out), build_message(out).as_bytes()):
        subject = str(_parse(raw)["Subject"])  # type: ignore[arg-type]
        assert "Bcc: evil" not in subject and "QmNjOiBldmls" in subject


def test_base64_lines_are_76_columns_and_end_with_the_data() -> None:
    """Whole lines of 76, a shorter last one, no empty line and no CRLF after the last
    (sizes around the 57-byte line: 0, one line exactly, one byte over, many lines)."""
    import base64
    import binascii

    from digest.deliver.wire import _base64

    for size in (0, 1, 56, 57, 58, 113, 114, 115, 57 * 40, 57 * 40 + 2):
        data = bytes(range(256)) * (size // 256 + 1)
        data = data[:size]
        out = _base64(data)
        lines = out.split(b"\r\n")
        assert all(len(line) == 76 for line in lines[:-1]), size
        assert 0 < len(lines[-1]) <= 76 or size == 0, size
        assert base64.b64decode(b"".join(lines)) == data
        assert b"".join(lines) == binascii.b2a_base64(data, newline=False)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.lists(st.sampled_from([*" \t.=é—\x00\r\u2028ax", "x" * 70]), max_size=12).map("".join),
        max_size=8,
    )
)
def test_line_by_line_quoted_printable_is_the_whole_body_encoded(lines: list[str]) -> None:
    """The text part is encoded a line at a time (each distinct line once a run): the
    same bytes as binascii encoding the body at once, long lines, trailing blanks and CRs
    included, but that no line starts with a dot ("=2E": SMTP needs no dot-stuffing);
    asked twice (the second time from the cache), the same again."""
    import binascii

    from digest.deliver.wire import _lines, _quoted_printable

    text = "\n".join(lines)
    whole = binascii.b2a_qp(_lines(text), istext=True).replace(b"\n", b"\r\n")
    ours = _quoted_printable(text)
    assert _quoted_printable(text) == ours
    physical = ours.split(b"\r\n")
    # (binascii writes a blank that ends a line as "=20" past its own limit: 78 at most)
    assert all(len(line) <= 78 and not line.startswith(b".") for line in physical)
    assert binascii.a2b_qp(ours.replace(b"\r\n", b"\n")) == _lines(text)
    if not any(line.startswith(b".") for line in whole.split(b"\r\n")):
        assert ours == whole


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*" \t.=éax—\x00", "x" * 40, ".x", "=."]), max_size=40))
def test_a_dot_that_would_start_a_line_is_escaped_within_76_columns(parts: list[str]) -> None:
    """What a rating link (dots everywhere, soft breaks anywhere) becomes: every physical
    line within 76 columns, none starting with ".", every break soft, the same bytes
    once decoded."""
    import binascii

    from digest.deliver.wire import _no_leading_dot

    line = "".join(parts).encode()
    encoded = binascii.b2a_qp(line + b"\n", istext=True)[:-1].replace(b"\n", b"\r\n")
    physical = _no_leading_dot(encoded).split(b"\r\n")
    assert all(len(p) <= 76 and not p.startswith(b".") for p in physical)
    assert all(p.endswith(b"=") for p in physical[:-1])
    assert binascii.a2b_qp(b"\n".join(physical)) == line


def test_the_date_is_written_in_the_offset_given() -> None:
    """The Date header is cached per send time; one instant in two offsets stays two."""
    from datetime import UTC, datetime, timedelta, timezone

    noon = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for when in (noon, noon.astimezone(timezone(timedelta(hours=1))), noon):
        out = make_email(date=when)
        assert_same(out)
        assert _parse(message_bytes(out) or b"")["Date"].datetime.utcoffset() == when.utcoffset()
