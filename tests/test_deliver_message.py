"""build_message: MIME structure, headers, header injection, non-ASCII text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.deliver import OutgoingEmail, build_message
from digest.deliver.message import clean_header_text, unique_by_delivery

from .factories import MAILTO, UNSUBSCRIBE, WHEN, make_email


def round_trip(email: OutgoingEmail) -> tuple[bytes, EmailMessage]:
    raw = build_message(email).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return raw, parsed


def unix(text: str) -> str:
    """A decoded part as written: LF line ends (set_content ends every part with one)."""
    return text.replace("\r\n", "\n").removesuffix("\n")


def test_multipart_alternative_with_plain_first_then_html() -> None:
    email = make_email(html="<p>" + "é long line " * 40 + "</p>")
    raw, msg = round_trip(email)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["MIME-Version"] is None for p in parts)
    assert build_message(email).as_bytes() == raw, "the same email gives the same bytes"
    assert unix(parts[0].get_content()) == email.text.removesuffix("\n")
    assert unix(parts[1].get_content()) == email.html
    assert max(raw) < 128, "the message is 7-bit clean for relays without 8BITMIME"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_headers() -> None:
    email = make_email()
    raw, msg = round_trip(email)
    assert msg["From"].addresses[0].addr_spec == "digest@digest.example.org"
    assert msg["From"].addresses[0].display_name == "papers-digest"
    assert msg["To"] == "reader1@example.org"
    assert msg["Subject"] == "Your papers for Oct 16 (1)"
    assert msg["Date"].datetime == WHEN
    assert msg["Message-ID"] == "<d-0001@digest.example.org>"
    assert msg["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>, <{MAILTO}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Digest-Delivery"] == "d-0001"
    assert msg["Precedence"] is None
    assert msg["MIME-Version"] == "1.0"
    # a long one-click URL is folded between items, never turned into encoded-words
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>,\r\n <{MAILTO}>\r\n".encode() in raw
    assert b"=?" not in raw.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize(
    ("url", "mailto", "expected", "one_click"),
    [
        (UNSUBSCRIBE, "", f"<{UNSUBSCRIBE}>", True),
        ("http://127.0.0.1:8000/u?t=1", "", "<http://127.0.0.1:8000/u?t=1>", False),
        ("", MAILTO, f"<{MAILTO}>", False),
        ("", "", None, False),
    ],
)
def test_list_unsubscribe_lists_only_what_is_present(
    url: str, mailto: str, expected: str | None, one_click: bool
) -> None:
    _, msg = round_trip(make_email(unsubscribe_url=url, unsubscribe_mailto=mailto))
    assert msg["List-Unsubscribe"] == expected
    assert (msg["List-Unsubscribe-Post"] is not None) is one_click


@pytest.mark.parametrize(
    "subject",
    [
        "x\r\nBcc: evil@x",
        "x\nBcc: evil@x",
        "x\rBcc: evil@x",
        "x\u2028Bcc: evil@x",
        "x\x85Bcc: evil@x",
        "x\x0bBcc: evil@x",
        "x\r\n\r\nBcc: evil@x",
    ],
)
def test_subject_cannot_inject_headers_or_a_body(subject: str) -> None:
    raw, msg = round_trip(make_email(subject=subject))
    assert msg["Bcc"] is None
    assert msg["Subject"] == "x Bcc: evil@x"
    assert b"\nBcc:" not in raw
    assert msg.get_content_type() == "multipart/alternative"


def test_non_ascii_subject_and_names_round_trip() -> None:
    subject = "Diffusion für Übersetzung — 機械翻訳 “quoted” 🚀"
    email = make_email(
        subject=subject,
        from_addr="Pâpers Dïgest <digest@digest.example.org>",
        to="reader1@example.org",
        text="Grüße — 你好\n",
        html="<p>Grüße — 你好</p>",
    )
    raw, msg = round_trip(email)
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == "Pâpers Dïgest"
    assert max(raw) < 128
    assert unix(msg.get_body(("plain",)).get_content()) == "Grüße — 你好"  # type: ignore[union-attr]


def test_an_internationalised_domain_goes_out_as_idna() -> None:
    raw, msg = round_trip(make_email(to="jörg@exämple.org"))
    assert msg["To"] == "jörg@xn--exmple-cua.org"
    assert b"To: j=?utf-8" not in raw and "To: jörg@xn--exmple-cua.org".encode() in raw


def test_an_ascii_domain_with_ascii_local_part_is_untouched() -> None:
    _, msg = round_trip(make_email(to="reader@example.org"))
    assert msg["To"] == "reader@example.org"


def test_date_keeps_its_offset() -> None:
    when = datetime(2024, 10, 16, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    _, msg = round_trip(make_email(date=when))
    assert msg["Date"].datetime == when
    assert str(msg["Date"]).endswith("+0200")


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"date": datetime(2024, 10, 16, 7, 30)}, "timezone-aware"),
        ({"message_id": "no-brackets@example.org"}, "message_id"),
        ({"message_id": "<a@b>\r\nBcc: x@y"}, "message_id"),
        ({"to": "reader@example.org\r\nBcc: x@y"}, "To"),
        ({"from_addr": "x <a@b>\nBcc: c@d"}, "From"),
        ({"unsubscribe_url": "javascript:alert(1)"}, "http"),
        ({"unsubscribe_mailto": "unsubscribe@example.org"}, "mailto"),
        ({"unsubscribe_url": "https://x.example/a b"}, "escaped"),
        ({"delivery_id": "../../etc/passwd"}, "delivery_id"),
    ],
)
def test_unsafe_fields_are_refused(change: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        build_message(make_email(**change))  # type: ignore[arg-type]


def _no_space(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_subject_stays_one_header(subject: str) -> None:
    _, msg = round_trip(make_email(subject=subject))
    # The stdlib's folder may drop a space that falls between two encoded words (decoders
    # ignore whitespace there, RFC 2047 §6.2); the text is otherwise the same.
    assert _no_space(msg["Subject"]) == _no_space(clean_header_text(subject))
    assert sorted(msg.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "Auto-Submitted",
            "X-Digest-Delivery",
            "Content-Type",
            "MIME-Version",
        ]
    )


def test_unique_by_delivery() -> None:
    emails = [make_email(1), make_email(2), make_email(1), make_email(3), make_email(2)]
    assert unique_by_delivery(emails) == ([0, 1, 3], [0, 1, 0, 3, 1])
