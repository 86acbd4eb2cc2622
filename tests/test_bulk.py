"""Bulk subscriber import and export: files checked row by row, a real store written in
pages, confirmation emails through the real outbox, and the CLI's exact output."""

from __future__ import annotations

import email
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import bulk, enrol, pipeline
from digest.cli import cli
from digest.config import Config
from digest.deliver import OutgoingEmail, SendResult
from digest.deliver.memory import MemoryBackend
from digest.errors import SourceError
from digest.links import link
from digest.model import Keyword, Profile, Subscriber
from digest.rank import make_profile
from digest.render.notices import confirmation_email
from digest.store import Store
from digest.store import upserts as store_upserts
from digest.subscriptions import subscribe
from digest.tokens import load_secret

NOW = datetime(2025, 12, 1, 9, tzinfo=UTC)
EARLIER = NOW - timedelta(days=30)
LORA = make_profile("papers", 'LoRA, "video diffusion"^2', "survey")
SPEECH = make_profile("speech", "TTS, ASR")

CSV = """\
email,keywords,exclude,profile,timezone,send_at,frequency
Ada@Example.org,"LoRA, ""video diffusion""^2",survey,,Europe/Berlin,06:30,
bob@example.org,<script>alert(1)</script>,,,,,weekly
ada@example.org,"TTS, ASR",,speech,,,
"""
JSONL = """\
{"email": "Ada@Example.org", "keywords": ["LoRA", "\\"video diffusion\\"^2"], \
"exclude": ["survey"], "timezone": "Europe/Berlin", "send_at": "06:30"}
{"email": "bob@example.org", "keywords": ["<script>alert(1)</script>"], "frequency": "weekly"}
{"email": "ada@example.org", "profile": "speech", "keywords": "TTS, ASR"}
"""


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")


def run(project: Path, *args: str, stdin: bytes | None = None) -> Result:
    """The CLI on `project`'s config at NOW; never a traceback."""
    result = CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), "--now", NOW.isoformat(), *args], stdin
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result


def write(project: Path, name: str, text: str | bytes) -> str:
    path = project / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return str(path)


def outbox(config: Config) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted(config.delivery.outbox_dir.glob("*.eml"))
    ]


@contextmanager
def data_version(config: Config) -> Iterator[Callable[[], int]]:
    """A second connection's view of writes: SQLite's data_version moves on each commit
    by another connection that changed the file, and only then. A context manager, so the
    connection is closed in the test's own thread (a generator left open was closed by the
    garbage collector in whatever thread ran next: a server's, which SQLite refuses)."""
    db = sqlite3.connect(config.store_path)
    try:
        yield lambda: int(db.execute("PRAGMA data_version").fetchone()[0])
    finally:
        db.close()


def as_typed(store: Store) -> list[tuple[str, str, str, str, str, str, list[str], list[str]]]:
    """Every subscriber's profiles with the settings, as the listing shows them."""
    return [
        (
            s.email,
            s.status,
            s.timezone,
            s.send_at,
            s.frequency,
            p.name,
            [k.text for k in p.keywords],
            [k.text for k in p.exclude],
        )
        for s in store.subscribers()
        for p in s.profiles
    ]


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
        with mock.patch.object(store_upserts, "UPSERT_PAGE", 2):  # several pages
            pages = list(bulk_store.upsert_subscribers(rows, NOW, confirmed=confirmed))
        assert bulk_store.subscribers() == one_by_one.subscribers()
        addresses = {row.email for row in rows}
        assert len(pages) == (len(addresses) + 1) // 2
        total = sum(pages, store_upserts.UpsertCounts())
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
        mock.patch.object(store_upserts, "UPSERT_PAGE", 2),
        mock.patch.object(enrol, "CONFIRMATION_BATCH", 1),
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


def test_a_broken_outbox_loses_no_import(project: Path, config: Config, store: Store) -> None:
    (project / "var").mkdir(exist_ok=True)
    config.delivery.outbox_dir.write_text("a file where the outbox directory should be")
    path = write(project, "one.csv", "email,keywords\nada@example.org,LoRA\n")
    result = run(project, "subscribers", "import", path)
    assert result.exit_code == 1  # imported; a confirmation still to send
    assert result.stderr.startswith("warning: confirmation email to ada@example.org not sent")
    assert ", 0 confirmations sent" in result.stdout
    assert [s.email for s in store.subscribers()] == ["ada@example.org"]


def test_a_mail_setup_error_stops_before_anything_is_written(
    project: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_TEST_SMTP_PASSWORD", raising=False)
    text = (project / "config.toml").read_text().replace('backend = "outbox"', 'backend = "smtp"')
    text += '\n[delivery.smtp]\nusername = "digest"\npassword_env = "DIGEST_TEST_SMTP_PASSWORD"\n'
    (project / "config.toml").write_text(text)
    path = write(project, "one.csv", "email,keywords\nada@example.org,LoRA\n")
    result = run(project, "--allow-local-links", "subscribers", "import", path)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: delivery.smtp.password_env: environment variable DIGEST_TEST_SMTP_PASSWORD"
        " is not set\n",
    )
    assert store.subscribers() == []
    confirmed = run(project, "subscribers", "import", path, "--confirmed")
    assert confirmed.exit_code == 0  # a confirmed list needs no mail setup
    assert [s.status for s in store.subscribers()] == ["confirmed"]


# -- the listing stays as it was ----------------------------------------------------------------


def test_the_listing_is_unchanged_by_the_group(project: Path, config: Config, store: Store) -> None:
    subscribe(config, store, "ada@example.org", LORA, NOW, confirmed=True)
    subscribe(config, store, "bob@example.org", SPEECH, NOW, timezone="Asia/Tokyo")
    listed = run(project, "subscribers")
    assert listed.exit_code == 0 and listed.stderr == "2 subscribers\n"
    assert listed.stdout.splitlines() == [
        f"{'ada@example.org':32} {'confirmed':12} daily  07:00 {'UTC':16} "
        'papers: LoRA, "video diffusion"^2',
        f"{'bob@example.org':32} {'pending':12} daily  07:00 {'Asia/Tokyo':16} speech: TTS, ASR",
    ]
    pending = run(project, "subscribers", "--status", "pending", "--json")
    assert pending.stderr == ""
    (row,) = [json.loads(line) for line in pending.stdout.splitlines()]
    assert (row["email"], row["profiles"][0]["keywords"]) == ("bob@example.org", ["TTS", "ASR"])
    refused = run(project, "subscribers", "--status", "pending", "export")
    assert refused.exit_code == 2
    assert refused.stderr == "error: --status and --json of the listing go without a subcommand\n"


def test_every_subcommand_has_help(project: Path) -> None:
    for name in ("import", "export"):
        result = run(project, "subscribers", name, "--help")
        assert result.exit_code == 0 and len(result.stdout) > 300, name
    assert "import" in run(project, "subscribers", "--help").stdout


# -- importing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text"), [("readers.csv", CSV), ("readers.jsonl", JSONL)])
def test_import_then_again_changes_nothing(
    project: Path, config: Config, store: Store, name: str, text: str
) -> None:
    path = write(project, name, text)
    first = run(project, "subscribers", "import", path)
    assert (first.exit_code, first.stderr) == (0, "")
    assert first.stdout == (
        f"imported {path}: 2 new, 0 changed, 0 unchanged, 0 bad (skipped), 2 confirmations sent\n"
    )
    assert as_typed(store) == [
        ("ada@example.org", "pending", "Europe/Berlin", "06:30", "daily", "papers",
         ["LoRA", "video diffusion"], ["survey"]),
        ("ada@example.org", "pending", "Europe/Berlin", "06:30", "daily", "speech",
         ["TTS", "ASR"], []),
        ("bob@example.org", "pending", "UTC", "07:00", "weekly", "papers",
         ["<script>alert(1)</script>"], []),
    ]  # fmt: skip
    ada = store.subscriber_by_email("ada@example.org")
    assert ada is not None and ada.profiles[0] == LORA  # parsed by make_profile, as typed
    with data_version(config) as version:
        before = version()
        again = run(project, "subscribers", "import", path)
        assert again.stdout == (
            f"imported {path}: 0 new, 0 changed, 2 unchanged, 0 bad (skipped),"
            " 0 confirmations sent\n"
        )
        assert version() == before, "a re-import that changes nothing must not write"
    assert len(outbox(config)) == 2


def test_the_confirmation_is_the_one_subscribe_sends(
    project: Path, config: Config, store: Store
) -> None:
    path = write(project, "one.csv", "email,keywords\nada@example.org,LoRA\n")
    assert run(project, "subscribers", "import", path).exit_code == 0
    ada = store.subscriber_by_email("ada@example.org")
    assert ada is not None and ada.status == "pending"
    expected = confirmation_email(
        config.delivery, ada, link(config, load_secret(config), "confirm", ada, NOW), NOW
    )
    (message,) = outbox(config)
    assert (config.delivery.outbox_dir / f"{expected.delivery_id}.eml").exists()
    assert (message["To"], message["Subject"]) == (expected.to, expected.subject)
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert body.replace("\r\n", "\n") == expected.text
    token = body.split("token=")[1].split()[0]
    assert run(project, "confirm", token).stdout == "confirmed ada@example.org\n"


def test_confirmed_sends_nothing_and_updates_known_readers(
    project: Path, config: Config, store: Store
) -> None:
    subscribe(config, store, "ada@example.org", LORA, EARLIER, timezone="Asia/Tokyo")
    text = (
        "email,keywords,profile,send_at\nada@example.org,TTS,papers,\nnew@example.org,ASR,,08:15\n"
    )
    path = write(project, "list.csv", text)
    result = run(project, "subscribers", "import", path, "--confirmed", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "file": path,
        "format": "csv",
        "imported": True,
        "rows": 2,
        "new": 1,
        "changed": 1,
        "unchanged": 0,
        "kept_unsubscribed": 0,
        "bad": [],
        "confirmations": 0,
        "unsent": [],
    }
    ada, new = store.subscribers()
    assert (ada.status, ada.timezone, ada.profiles[0].keywords) == (
        "confirmed",
        "Asia/Tokyo",  # not in the file: kept
        (Keyword("TTS"),),  # the later profile of the same name replaces it
    )
    assert (new.status, new.send_at, new.confirmed_at) == ("confirmed", "08:15", NOW)
    assert outbox(config) == []


def test_duplicates_later_row_wins_several_names_are_several_profiles(
    project: Path, store: Store
) -> None:
    text = (
        '{"email": "ada@example.org", "keywords": ["LoRA"], "timezone": "Asia/Tokyo"}\n'
        '{"email": "ADA@example.org", "profile": "speech", "keywords": ["TTS"]}\n'
        '{"email": "ada@example.org", "keywords": ["quantization"], "send_at": "05:00"}\n'
    )
    result = run(project, "subscribers", "import", write(project, "d.jsonl", text))
    assert "1 new, 0 changed, 0 unchanged" in result.stdout
    (ada,) = store.subscribers()
    assert [(p.name, p.keywords) for p in ada.profiles] == [
        ("papers", (Keyword("quantization"),)),
        ("speech", (Keyword("TTS"),)),
    ]
    assert (ada.timezone, ada.send_at) == ("Asia/Tokyo", "05:00")


def test_an_unsubscribed_address_stays_unsubscribed(
    project: Path, config: Config, store: Store
) -> None:
    sub = subscribe(config, store, "gone@example.org", LORA, EARLIER, confirmed=True).subscriber
    store.set_subscriber_status(sub.id, "unsubscribed", EARLIER)
    path = write(project, "old.csv", "email,keywords\ngone@example.org,TTS\n")
    result = run(project, "subscribers", "import", path, "--confirmed")
    assert result.stdout == (
        f"imported {path}: 0 new, 0 changed, 1 unchanged, 0 bad (skipped), 0 confirmations sent\n"
    )
    assert result.stderr == (
        "note: 1 address has unsubscribed and stayed so (`digest subscribe` re-subscribes one)\n"
    )
    (gone,) = store.subscribers()
    assert (gone.status, gone.profiles) == ("unsubscribed", (LORA,))


# -- bad rows and bad files through the CLI -------------------------------------------------


@pytest.mark.parametrize(("text", "message"), BAD_ROWS, ids=[m[:24] for _, m in BAD_ROWS])
def test_a_bad_row_is_named_and_nothing_is_imported(
    project: Path, store: Store, text: str, message: str
) -> None:
    content, bad_line = with_a_good_row(text)
    path = write(project, "bad.txt", content)
    result = run(project, "subscribers", "import", path)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        result.stderr.splitlines()[0],
        f"error: {path}: 1 bad row, nothing imported; fix it, or give --skip-invalid"
        " to import the other 1",
    ]
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:{bad_line}: {message}"), first
    assert store.subscribers() == []
    skipped = run(project, "subscribers", "import", path, "--skip-invalid")
    assert skipped.exit_code == 0
    assert skipped.stderr.splitlines() == [first]
    assert skipped.stdout == (
        f"imported {path}: 1 new, 0 changed, 0 unchanged, 1 bad (skipped), 1 confirmation sent\n"
    )
    assert [s.email for s in store.subscribers()] == ["good@example.org"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, ": no such file"),
        (b"email,keywords\na@example.org,caf\xe9\n", ":2: not UTF-8 text (byte 0xe9); save it"),
        (b"name,keywords\nx,y\n", ":1: no email column; the first line must name the columns"),
        (b"email;keywords\na@example.org;LoRA\n", ":1: no email column"),
        (b"email,time_zone\n", ":1: unknown column 'time_zone'; the columns are email, profile"),
        (b"email,Email\n", ":1: column 'email' appears twice"),
        (b'\n  [{"email": "a@example.org"}]\n', ":2: a JSON array; write JSON Lines instead"),
        (b'email\n"' + b"x" * 200_000 + b'"\n', ":2: not readable as CSV (field larger than"),
    ],
)
def test_a_file_that_is_not_rows_is_one_error_line(
    project: Path, store: Store, content: bytes | None, message: str
) -> None:
    path = str(project / "missing.csv") if content is None else write(project, "f.csv", content)
    result = run(project, "subscribers", "import", path)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}{message}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert store.subscribers() == []


def test_a_directory_is_not_a_file(project: Path) -> None:
    result = run(project, "subscribers", "import", str(project))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {project}: is a directory, not a file\n",
    )


def test_hostile_and_unicode_text_stays_text(project: Path, store: Store) -> None:
    rows = [
        {"email": "jürgen@münchen.example", "keywords": ["<script>alert(1)</script>", "Größe"]},
        {"email": "rtl@example.org", "profile": "<b>x</b>", "keywords": ["\u202eevil", "日本語"]},
        {"email": "ok@example.org", "keywords": ['=HYPERLINK("x")', "'; DROP TABLE papers;--"]},
    ]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    result = run(project, "subscribers", "import", write(project, "h.jsonl", text))
    assert result.exit_code == 0, result.output
    assert [(s.email, [(p.name, [k.text for k in p.keywords]) for p in s.profiles])
            for s in store.subscribers()] == [
        ("jürgen@münchen.example", [("papers", ["<script>alert(1)</script>", "Größe"])]),
        ("ok@example.org", [("papers", ["=HYPERLINK(x)", "'; DROP TABLE papers;--"])]),
        ("rtl@example.org", [("<b>x</b>", ["\u202eevil", "日本語"])]),
    ]  # fmt: skip
    assert store.count_papers() == 0  # the table is still there
    assert len(bulk.read_rows(text.encode(), "h.jsonl").rows) == 3


# -- export ------------------------------------------------------------------------------------


def _mixed_store(config: Config, store: Store) -> None:
    subscribe(config, store, "ada@example.org", LORA, EARLIER, confirmed=True,
              timezone="Europe/Berlin", send_at="06:30")  # fmt: skip
    subscribe(config, store, "ada@example.org", SPEECH, EARLIER)
    subscribe(config, store, "bob@example.org", make_profile("papers", "<script>, 日本語^1.5"),
              EARLIER, frequency="weekly")  # fmt: skip
    gone = subscribe(config, store, "gone@example.org", LORA, EARLIER).subscriber
    store.set_subscriber_status(gone.id, "unsubscribed", EARLIER)
    bare = subscribe(config, store, "bare@example.org", SPEECH, EARLIER).subscriber
    store.remove_profile(bare.id, "speech")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_importing_an_export_is_a_no_op(
    project: Path, config: Config, store: Store, fmt: str
) -> None:
    _mixed_store(config, store)
    before = store.subscribers()
    exported = run(project, "subscribers", "export", "--format", fmt)
    assert exported.stderr == "note: 1 subscriber without a profile left out\n"
    with data_version(config) as version:
        first = version()
        again = run(project, "subscribers", "import", "-", stdin=exported.stdout.encode())
        assert again.stdout == (
            "imported <stdin>: 0 new, 0 changed, 3 unchanged, 0 bad (skipped),"
            " 0 confirmations sent\n"
        )
        assert version() == first and store.subscribers() == before


def test_export_formats_exactly(project: Path, config: Config, store: Store) -> None:
    _mixed_store(config, store)
    csv_out = run(project, "subscribers", "export", "--format", "csv", "--status", "confirmed")
    assert csv_out.stdout == (
        "email,profile,keywords,exclude,timezone,send_at,frequency\n"
        'ada@example.org,papers,"LoRA, ""video diffusion""^2",survey,Europe/Berlin,06:30,daily\n'
        'ada@example.org,speech,"TTS, ASR",,Europe/Berlin,06:30,daily\n'
    )
    jsonl = run(project, "subscribers", "export", "--status", "pending").stdout
    assert jsonl == (
        '{"email": "bob@example.org", "profile": "papers", "keywords": ["<script>", "日本語^1.5"],'
        ' "exclude": [], "timezone": "UTC", "send_at": "07:00", "frequency": "weekly"}\n'
    )


def test_an_export_moves_a_list_to_a_new_store(project: Path, config: Config, store: Store) -> None:
    _mixed_store(config, store)
    exported = run(project, "subscribers", "export", "--format", "csv").stdout
    other = project / "other.sqlite3"
    result = CliRunner().invoke(
        cli,
        ["--config", str(project / "config.toml"), "--db", str(other), "--now", NOW.isoformat(),
         "subscribers", "import", "-", "--confirmed"],
        exported.encode(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with Store(other) as copy:
        assert [(s.email, s.status, s.timezone, s.send_at, s.frequency, s.profiles)
                for s in copy.subscribers()] == [
            (s.email, "confirmed", s.timezone, s.send_at, s.frequency, s.profiles)
            for s in store.subscribers() if s.profiles
        ]  # fmt: skip
