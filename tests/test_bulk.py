"""Bulk subscriber import and export: files checked row by row, a real store written in
pages, confirmation emails in batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import bulk, pipeline
from digest.config import Config
from digest.deliver import OutgoingEmail, SendResult
from digest.deliver.memory import MemoryBackend
from digest.errors import SourceError
from digest.model import Keyword, Profile, Subscriber
from digest.rank import make_profile
from digest.store import Store
from digest.store import subscribers as store_subscribers

NOW = datetime(2025, 12, 1, 9, tzinfo=UTC)
EARLIER = NOW - timedelta(days=30)
LORA = make_profile("papers", 'LoRA, "video diffusion"^2', "survey")
SPEECH = make_profile("speech", "TTS, ASR")


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret")


# -- reading and checking rows ----------------------------------------------------------------

#: (file text, what the error says): CSV as a header and one bad record; JSON one bad line.
BAD_ROWS = [
    ("email,keywords\n,LoRA\n", "email is missing"),
    ("email,keywords\nnot-an-address,LoRA\n", "'not-an-address' is not a valid email address: "),
    (
        'email,keywords\n"a@b.org\nBcc: x@y",LoRA\n',
        "email 'a@b.org\\nBcc: x@y' contains the control character U+000A",
    ),
    ("email,keywords,timezone\na@example.org,LoRA,Mars/Olympus\n", "timezone 'Mars/Olympus': "),
    ("email,keywords,send_at\na@example.org,LoRA,7am\n", "send_at '7am': use 24-hour HH:MM"),
    ("email,keywords,frequency\na@example.org,LoRA,hourly\n", "frequency 'hourly': use daily"),
    ("email,keywords\na@example.org,\n", "profile 'papers' has no keyword to search for"),
    ("email,keywords\na@example.org,-survey\n", "profile 'papers' has no keyword to search for"),
    ("email,keywords\na@example.org,🙂 ✨\n", "profile 'papers' has no keyword to search for"),
    ("email,keywords\na@example.org,LoRA^-1\n", "keyword 'LoRA^-1' has weight '-1'"),
    (
        f"email,keywords\na@example.org,{'x' * 201}\n",
        f"keyword '{'x' * 37}...' is 201 characters long; the limit is 200",
    ),
    ('email,keywords,profile\na@example.org,LoRA,"a\tb"\n', "profile 'a\\tb' contains the"),
    ("email,keywords\na@example.org,LoRA,extra\n", "3 values, but the header names 2 columns"),
    ('{"email": "a@example.org", "keywords": 3}\n', "keywords must be a list of strings or"),
    ('{"email": ["a@example.org"], "keywords": "x"}\n', "email must be a string, not a list"),
    ('{"email": "a@example.org", "keyword": "x"}\n', "unknown field 'keyword'; the fields are"),
    (
        '{"email": "a@example.org", "keywords": "\\ud800"}\n',
        "keywords '\\ud800' contains a lone surrogate U+D800",
    ),
    ('{"email": "a@example.org", "keywords": "x"\n', "not valid JSON: Expecting ',' delimiter"),
    ('"a@example.org"\n', "not a JSON object but a string; write one object a line"),
    ("[1]\n", "not a JSON object but a list"),  # not the first line: not a JSON array file
    ('{"email": "a@example.org", "keywords": "x", "send_at": 7}\n', "send_at must be a string"),
    (
        '{"email": "a@example.org", "keywords": [1' + "0" * 5000 + "]}\n",
        "not valid JSON: a number is too long",
    ),
]


def with_a_good_row(text: str) -> tuple[str, int]:
    """`text` of BAD_ROWS after a good row, and the line of its bad row: CSV line 3
    (after the header), JSON Lines line 2."""
    if text.startswith(("{", '"', "[")):
        return '{"email": "good@example.org", "keywords": ["LoRA"]}\n' + text, 2
    header, record = text.split("\n", 1)
    return f"{header}\ngood@example.org,LoRA\n{record}", 3


def test_read_rows_names_each_bad_row() -> None:
    for text, message in BAD_ROWS:
        content, line = with_a_good_row(text)
        checked = bulk.read_rows(content.encode(), "f")
        (good,) = checked.rows
        (bad,) = checked.bad
        assert (good.email, bad.line) == ("good@example.org", line), text
        assert bad.message.startswith(message) and "\n" not in bad.message, (text, bad)
        assert checked.where(bad) == f"f:{line}: {bad.message}"


def test_csv_with_bom_crlf_blank_lines_any_case_and_a_multiline_cell() -> None:
    data = (
        b"\xef\xbb\xbfEMAIL , Keywords\r\n"
        b"\r\n"
        b'ada@example.org,"LoRA,\r\n""video diffusion"""\r\n'
        b"bad,x\r\n"
    )
    checked = bulk.read_rows(data, "f.csv")
    assert checked.format == "csv" and checked.bad[0].line == 5  # after a 2-line record
    (row,) = checked.rows
    assert (row.line, row.profile.keywords) == (
        3,
        (Keyword("LoRA"), Keyword("video diffusion", phrase=True)),
    )


def test_format_is_told_by_content_not_by_name() -> None:
    assert bulk.detect_format('  \n{"email": "a@example.org"}') == "jsonl"
    assert bulk.detect_format("email,keywords\n") == "csv"
    assert bulk.read_rows(b'{"email": "a@example.org", "keywords": "x"}', "x.csv").format == (
        "jsonl"
    )
    assert bulk.read_rows(b"", "empty.csv") == bulk.ImportFile("empty.csv", "csv", (), ())
    with pytest.raises(SourceError, match=r"^f:1: no email column"):
        bulk.read_rows(b"ada@example.org,LoRA\n", "f")  # no header: the first row is not one


def test_export_lines_read_back_as_the_same_rows() -> None:
    odd = make_profile("x", "<script>, 日本語^1.5")
    ada = Subscriber(
        1, "ada@example.org", "confirmed", "Europe/Berlin", "06:30", "weekly", False, EARLIER,
        profiles=(LORA, SPEECH, odd),
    )  # fmt: skip
    bare = Subscriber(2, "bare@example.org", "pending", "UTC", "07:00", "daily", False, EARLIER)
    for fmt in bulk.FORMATS:
        text = "".join(bulk.export_lines([ada, bare], fmt))
        checked = bulk.read_rows(text.encode(), "export")
        assert (checked.format, checked.bad) == (fmt, ())
        assert [(r.email, r.profile, r.timezone, r.send_at, r.frequency) for r in checked.rows] == [
            (ada.email, p, ada.timezone, ada.send_at, ada.frequency) for p in ada.profiles
        ]


# -- the store's bulk write is upsert_subscriber row by row ----------------------------------------

ADDRESSES = ["a@example.org", "b@example.org", "c@example.org", "d@example.org"]
PROFILES = [
    make_profile("papers", "LoRA"),
    make_profile("papers", "TTS, ASR"),
    make_profile("speech", '"speech recognition"^2', "survey"),
]
rows_strategy = st.lists(
    st.builds(
        bulk.ImportRow,
        line=st.just(1),
        email=st.sampled_from(ADDRESSES),
        profile=st.sampled_from(PROFILES),
        timezone=st.sampled_from([None, "UTC", "Europe/Berlin"]),
        send_at=st.sampled_from([None, "06:00"]),
        frequency=st.sampled_from([None, "weekly"]),
    ),
    max_size=12,
)
prior_strategy = st.lists(
    st.tuples(
        st.sampled_from(ADDRESSES),
        st.sampled_from(PROFILES),
        st.sampled_from(["pending", "confirmed", "unsubscribed"]),
    ),
    max_size=4,
)


def _prepare(store: Store, prior: list[tuple[str, Profile, str]]) -> None:
    for address, profile, status in prior:
        sub, _ = store.upsert_subscriber(address, profile, now=EARLIER, timezone="Asia/Tokyo")
        if status != "pending":
            store.set_subscriber_status(sub.id, status, EARLIER)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, prior=prior_strategy, confirmed=st.booleans())
def test_upsert_subscribers_is_upsert_subscriber_row_by_row(
    rows: list[bulk.ImportRow], prior: list[tuple[str, Profile, str]], confirmed: bool
) -> None:
    with Store(":memory:") as one_by_one, Store(":memory:") as bulk_store:
        _prepare(one_by_one, prior)
        _prepare(bulk_store, prior)
        known = {s.email for s in one_by_one.subscribers()}
        for row in rows:
            one_by_one.upsert_subscriber(
                row.email,
                row.profile,
                now=NOW,
                timezone=row.timezone,
                send_at=row.send_at,
                frequency=row.frequency,
                confirmed=confirmed,
            )
        with mock.patch.object(store_subscribers, "UPSERT_PAGE", 2):  # several pages
            pages = list(bulk_store.upsert_subscribers(rows, NOW, confirmed=confirmed))
        assert bulk_store.subscribers() == one_by_one.subscribers()
        addresses = {row.email for row in rows}
        assert len(pages) == (len(addresses) + 1) // 2
        total = sum(pages, store_subscribers.UpsertCounts())
        assert total.new == len(addresses - known) and total.addresses == len(addresses)
        assert list(total.created) == [bulk_store.subscriber(s.id) for s in total.created]


def test_unchanged_rows_write_nothing_and_unsubscribed_may_be_kept(store: Store) -> None:
    rows = [bulk.ImportRow(1, "a@example.org", LORA), bulk.ImportRow(2, "b@example.org", LORA)]
    (first,) = store.upsert_subscribers(rows, EARLIER, confirmed=True)
    assert (first.new, first.changed, first.unchanged) == (2, 0, 0)
    store.set_subscriber_status(2, "unsubscribed", EARLIER)
    before = store._db.total_changes
    (again,) = store.upsert_subscribers(rows, NOW, confirmed=True, resubscribe=False)
    assert (again.new, again.changed, again.unchanged, again.kept_unsubscribed) == (0, 0, 2, 1)
    assert store._db.total_changes == before
    (back,) = store.upsert_subscribers(rows, NOW, confirmed=True)
    assert (back.changed, back.unchanged) == (1, 1)
    assert store.subscriber(2).status == "confirmed"  # type: ignore[union-attr]


# -- the import: batches of confirmations, failures, progress ----------------------------------


def test_a_refused_confirmation_is_reported_and_the_import_stays(
    config: Config, store: Store
) -> None:
    def answer(message: OutgoingEmail) -> SendResult:
        if message.to == "b@example.org":
            return SendResult(message.delivery_id, "failed", "550 no such mailbox")
        return SendResult(message.delivery_id, "sent")

    backend = MemoryBackend(answer)
    steps: list[tuple[int, int, str]] = []
    data = "".join(f"{c}@example.org,LoRA\n" for c in "abcde").encode()
    with (
        mock.patch.object(store_subscribers, "UPSERT_PAGE", 2),
        mock.patch.object(pipeline, "CONFIRMATION_BATCH", 1),
        mock.patch.object(bulk, "_PROGRESS_EVERY", 2),
    ):
        report = pipeline.import_subscribers(
            config,
            store,
            b"email,keywords\n" + data,
            "list.csv",
            NOW,
            open_backend=lambda: backend,
            progress=lambda done, total, label: steps.append((done, total, label)),
        )
    assert (report.new, report.confirmations) == (5, 4)
    assert report.unsent == (("b@example.org", "failed: 550 no such mailbox"),)
    assert report.summary() == (
        "imported list.csv: 5 new, 0 changed, 0 unchanged, 0 bad (skipped), 4 confirmations sent"
    )
    assert len(store.subscribers(status="pending")) == 5 and backend.closed
    assert [s for s in steps if s[2] == "checking"] == [(3, 7, "checking"), (5, 7, "checking")]
    assert [s for s in steps if s[2] == "writing"] == [
        (2, 5, "writing"),
        (4, 5, "writing"),
        (5, 5, "writing"),
    ]
