"""`digest send` end to end: real store, real outbox files, a real SMTP server on
127.0.0.1; exactly once under retries, permanent failures and SIGKILL."""

from __future__ import annotations

import asyncio
import email
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import pipeline
from digest.cli import cli
from digest.config import Config, load_config
from digest.deliver import OutgoingEmail, SendResult, make_backend
from digest.deliver.memory import MemoryBackend
from digest.frozen import FreezeCache, freeze_compact, item_keys, records_for, thaw_compact
from digest.frozen import freeze_digest as freeze
from digest.frozen import thaw_digest as thaw
from digest.model import Delivery, Digest, DigestItem, DigestSection, Profile
from digest.rank import make_profile, terms_key
from digest.send import delivery_id, send
from digest.store import Store
from digest.subscriptions import subscribe

from .smtp_servers import Recording, Rejecting, SmtpServer, Transient


class KillPoint(Recording):
    """Accepts every message; at the `kill_at`-th it records the message, tells the test
    (`reached`) and holds its "250 OK" until the test has killed the client (`resume`):
    the worst moment for a crash, a message the server has that the sender never saw
    accepted. No sleeps: both sides wait on events."""

    def __init__(self) -> None:
        super().__init__()
        self.kill_at = 0
        self.reached = threading.Event()
        self.resume = threading.Event()

    async def on_data(self, server, session, envelope, n):  # type: ignore[no-untyped-def]
        reply = self.accept(server, session, envelope)
        if len(self.received) == self.kill_at:
            self.reached.set()
            await asyncio.get_running_loop().run_in_executor(None, self.resume.wait, 60)
        return reply

    def arm(self, kill_at: int) -> None:
        self.kill_at = kill_at
        self.reached.clear()
        self.resume.clear()


DAY1 = datetime(2025, 10, 16, 8, tzinfo=UTC)  # the Oct 16 capture's papers are new
DAY2 = datetime(2025, 11, 3, 8, tzinfo=UTC)  # the Nov 3 capture's papers are new
PEFT = make_profile("peft", ("LoRA", "parameter-efficient fine-tuning", "adapters"))
SPEECH = make_profile("speech", ("speech", "TTS", "ASR"))


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")


def smtp_config(project: Path, port: int) -> Config:
    with (project / "config.toml").open("a") as f:
        f.write(f'\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\ntimeout = 10\n')
    text = (project / "config.toml").read_text().replace('backend = "outbox"', 'backend = "smtp"')
    (project / "config.toml").write_text(text)
    return load_config(project / "config.toml", required=True)


def seeded(config: Config, *subscribers: tuple[str, Profile]) -> Store:
    """The seeded store of `seeded_config`/`seeded_project` (ingested once per session),
    with these readers confirmed the day before DAY1."""
    store = Store(config.store_path)
    assert store.count_papers() == 331, "use the seeded_config or seeded_project fixture"
    for address, spec in subscribers:
        subscribe(config, store, address, spec, DAY1 - timedelta(days=1), confirmed=True)
    return store


def thawed(store: Store, d: Delivery) -> Digest:
    """The digest a delivery froze, with the shared item records it refers to."""
    return thaw_compact(d.content, records_for([d.content], store.frozen_items))


def messages(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]


def test_outbox_end_to_end_once_per_day_and_never_a_paper_twice(config: Config) -> None:
    store = Store(config.store_path)
    seeds = config.root / "seeds"
    oct16 = [str(seeds / "002_543d901a7254557e.txt")]
    pipeline.ingest(config, store, oct16, now=DAY1 - timedelta(hours=2))
    for address, spec in (("ada@example.org", PEFT), ("bob@example.org", SPEECH)):
        subscribe(config, store, address, spec, DAY1 - timedelta(days=1), confirmed=True)
    backend = make_backend(config.delivery)
    report = send(config, store, backend, DAY1)
    assert (report.due, report.claimed, report.sent, report.failed) == (2, 2, 2, 0)
    first = messages(config.delivery.outbox_dir)
    assert sorted(m["To"] for m in first) == ["ada@example.org", "bob@example.org"]
    ada = next(m for m in first if m["To"] == "ada@example.org")
    assert ada.get_body(("plain",)).get_content().index("== peft ==") > 0
    # The send finds the sentences that matched: the email marks the words in them.
    assert "<mark>" in ada.get_body(("html",)).get_content()
    assert ada["List-Unsubscribe-Post"] is None  # the default link is http://127.0.0.1
    assert ada["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe?token=")
    ada_id = delivery_id(store.installation_id, 1, "ada@example.org", date(2025, 10, 16))
    assert ada["Message-ID"] == f"<{ada_id}@localhost>"
    # Same day again: nothing new is claimed or sent.
    again = send(config, store, backend, DAY1 + timedelta(hours=3))
    assert (again.due, again.claimed, again.sent) == (0, 0, 0)
    assert len(messages(config.delivery.outbox_dir)) == 2
    # The Nov 3 capture arrives: the next digests hold only papers it added.
    before = {p.id for p in store.papers()}
    nov3 = [str(seeds / "003_96cd1b5ccba177d1.txt")]
    pipeline.ingest(config, store, nov3, now=DAY2 - timedelta(hours=2))
    added = {p.id for p in store.papers()} - before
    day1 = {sid: store.sent_paper_ids(sid) for sid in (1, 2)}
    send(config, store, backend, DAY2)
    for d in (d for d in store.deliveries() if d.digest_date == date(2025, 11, 3)):
        ids = {i.paper.id for s in thawed(store, d).sections for i in s.items}
        assert ids and ids <= added and not ids & day1[d.subscriber_id]
    assert len(messages(config.delivery.outbox_dir)) == 4
    backend.close()
    store.close()


def test_a_paper_that_arrives_late_with_an_old_date_is_still_sent(seeded_config: Config) -> None:
    config = seeded_config
    """Captures are stamped with their day; one ingested after a send is still new."""
    store = seeded(config, ("ada@example.org", PEFT))
    backend = make_backend(config.delivery)
    assert send(config, store, backend, DAY1).sent == 1
    late = config.root / "late.txt"
    late.write_text(
        "Oct 16\n\nLoRA Adapters Revisited\n\nWe revisit low-rank adaptation (LoRA) for "
        "parameter-efficient fine-tuning of language models and show that adapters placed in "
        "every layer help.\n",
        encoding="utf-8",
    )
    # printed Oct 16 (first_seen Oct 16 00:00, before DAY1), arrives after the first send
    pipeline.ingest(config, store, [str(late)], now=DAY1 + timedelta(hours=12))
    send(config, store, backend, DAY1 + timedelta(days=1))
    latest = max(store.deliveries(), key=lambda d: d.digest_date)
    titles = [i.paper.title for s in thawed(store, latest).sections for i in s.items]
    assert titles == ["LoRA Adapters Revisited"]
    backend.close()
    store.close()


def test_two_sections_never_hold_the_same_paper(seeded_config: Config) -> None:
    config = seeded_config
    both = make_profile("again", PEFT.keywords)
    store = seeded(config)
    subscribe(config, store, "ada@example.org", PEFT, DAY1 - timedelta(days=1), confirmed=True)
    subscribe(config, store, "ada@example.org", both, DAY1 - timedelta(days=1))
    send(config, store, None, DAY1, dry_run=True)
    backend = make_backend(config.delivery)
    send(config, store, backend, DAY1)
    (d,) = store.deliveries()
    ids = [i.paper.id for s in thawed(store, d).sections for i in s.items]
    assert ids and len(ids) == len(set(ids))
    backend.close()
    store.close()


def test_a_retry_is_cancelled_when_the_reader_unsubscribes(seeded_project: Path) -> None:
    project = seeded_project
    with SmtpServer(Transient(code=451, first=1)) as server:
        config = smtp_config(project, server.port)
        store = seeded(config, ("ada@example.org", PEFT))
        backend = make_backend(config.delivery)
        assert send(config, store, backend, DAY1).retry == 1
        from digest.subscriptions import unsubscribe

        unsubscribe(config, store, "ada@example.org", DAY1)
        report = send(config, store, backend, DAY1 + timedelta(hours=1))
        assert (report.sent, report.cancelled) == (0, 1)
        assert server.received == []
        assert store.deliveries()[0].reason.startswith("cancelled")
        backend.close()
        store.close()


def test_send_times_time_zones_and_dry_run(seeded_config: Config) -> None:
    config = seeded_config
    store = seeded(config)
    subscribe(
        config,
        store,
        "tokyo@example.org",
        PEFT,
        DAY1 - timedelta(days=1),
        confirmed=True,
        timezone="Asia/Tokyo",
        send_at="18:00",
    )
    not_yet = datetime(2025, 10, 16, 8, tzinfo=UTC)  # 17:00 in Tokyo
    assert send(config, store, None, not_yet, dry_run=True).due == 0
    plan = send(config, store, None, not_yet + timedelta(hours=1), dry_run=True)
    assert plan.due == 1 and plan.planned[0][0] == "tokyo@example.org" and plan.planned[0][1] > 0
    assert store.deliveries() == []  # a dry run claims nothing
    store.close()


def test_empty_digest_is_not_sent_unless_asked(seeded_config: Config) -> None:
    config = seeded_config
    store = seeded(config, ("ada@example.org", make_profile("x", ("quantum chromodynamics",))))
    backend = make_backend(config.delivery)
    report = send(config, store, backend, DAY1)
    assert (report.due, report.empty, report.sent) == (1, 1, 0)
    subscribe(config, store, "ada@example.org", None, DAY1, notify_empty=True)
    report = send(config, store, backend, DAY1 + timedelta(minutes=1))
    assert report.sent == 1
    (msg,) = messages(config.delivery.outbox_dir)
    assert (
        "None of the 331 new papers matched your keywords today."
        in msg.get_body(("plain",)).get_content()
    )
    store.close()


def test_transient_smtp_failure_is_retried_with_backoff(seeded_project: Path) -> None:
    project = seeded_project
    with SmtpServer(Transient(code=421, first=1)) as server:
        config = smtp_config(project, server.port)
        store = seeded(config, ("ada@example.org", PEFT))
        backend = make_backend(config.delivery)
        first = send(config, store, backend, DAY1)
        assert (first.sent, first.retry) == (0, 1)
        (d,) = store.deliveries()
        assert d.state == "retry" and d.attempts == 1 and "421" in d.reason
        assert d.next_attempt_at == DAY1 + timedelta(minutes=1)
        assert send(config, store, backend, DAY1 + timedelta(seconds=30)).sent == 0  # not yet
        assert send(config, store, backend, DAY1 + timedelta(minutes=2)).sent == 1
        assert len(server.received) == 1 and store.deliveries()[0].state == "sent"
        backend.close()
        store.close()


def test_permanent_failure_is_recorded_and_not_retried(seeded_project: Path) -> None:
    project = seeded_project
    with SmtpServer(Rejecting(code=550)) as server:
        config = smtp_config(project, server.port)
        store = seeded(config, ("ada@example.org", PEFT))
        backend = make_backend(config.delivery)
        report = send(config, store, backend, DAY1)
        assert report.failed == 1
        result = CliRunner().invoke(
            cli, ["--config", str(project / "config.toml"), "deliveries", "--json"]
        )
        assert '"state": "failed"' in result.stdout and "550" in result.stdout
        # Not retried: the failed delivery stays failed; the next day is a new digest.
        assert send(config, store, backend, DAY1 + timedelta(hours=1)).failed == 0
        assert [d.state for d in store.deliveries()] == ["failed"]
        backend.close()
        store.close()


def test_a_frozen_digest_renders_the_same_after_a_restart(seeded_config: Config) -> None:
    config = seeded_config
    store = seeded(config, ("ada@example.org", PEFT))
    send(config, store, None, DAY1, dry_run=True)
    digest = pipeline.build_digest(config, store.papers(), [config.profiles[0]], DAY1)
    assert thaw(freeze(digest)) == digest
    store.close()


def test_compact_freezing_with_a_run_s_caches_is_freezing_without(
    seeded_config: Config,
) -> None:
    """A send run freezes and thaws shared items once (its caches): the claims and the
    digests read back are the same as without them, item by item."""
    config = seeded_config
    with Store(config.store_path) as store:
        papers = store.papers()
        # The terms ingest kept (ranking on them is ranking the texts: tests/test_terms.py),
        # as a send run ranks: the seeds are not analysed again for each digest.
        blobs = store.paper_terms([p.id for p in papers], terms_key(config.synonyms or None))
    assert len(blobs) == len(papers)
    broad = make_profile("broad", ("LoRA", "quantization", "distillation"))
    digests = [
        pipeline.build_digest(config, papers, profiles, DAY1, blobs=blobs)
        for profiles in ([PEFT], [broad, SPEECH], [PEFT, SPEECH], [broad])
    ]
    frozen = FreezeCache()
    thawed_items: dict = {}  # type: ignore[type-arg]
    claims, thawed_digests = [], []
    for digest in digests:
        content, records = freeze_compact(digest, frozen)
        assert (content, records) == freeze_compact(digest)
        thawed_digests.append(thaw_compact(content, records, thawed_items))
        assert thawed_digests[-1] == digest
        assert thaw_compact(content, records) == digest
        claims.append((content, records))
    items = sum(d.item_count for d in digests)
    item_records = {k for content, _ in claims for k in item_keys(content)}
    papers = {k for _, records in claims for k in records} - item_records
    assert len(item_records) < items  # readers share item records ...
    assert len(papers) < len(item_records)  # ... and items of one paper share its record
    assert all(k.startswith("p:") for k in papers)
    assert len(thawed_items) == len(item_records)  # each read once
    # Digests that share item objects (as the planner's and thawed ones do) freeze each
    # shared item and paper once, to the same claims.
    refrozen = FreezeCache()
    for digest, claim in zip(thawed_digests, claims, strict=True):
        assert freeze_compact(digest, refrozen) == claim
    assert (len(refrozen.items), len(refrozen.papers)) == (len(item_records), len(papers))


def test_a_compact_claim_is_the_json_of_its_digest_keys_sorted() -> None:
    """freeze_compact writes the digest's JSON from cached parts (a profile's once a run):
    the same text json.dumps(..., sort_keys=True) gives for it, hostile strings too."""
    from .factories import make_paper

    odd = 'Ünï "q" \\ </script>\u2028\x00\r\n=?utf-8?b?QQ==?= 🙂'
    named = make_profile(odd, ("LoRA", '"video diffusion"'), ("survey",), 3, 0.25)
    plain = make_profile("plain", ("RLHF",))
    papers = [make_paper(f"{odd} {n}", f"{odd}. Abstract {n}.") for n in range(3)]
    item = DigestItem(papers[0], 0.123456, (), (odd,))
    sections = (
        DigestSection(named, (item, DigestItem(papers[1], 1.0)), 4),
        DigestSection(plain, (), 0),
        DigestSection(named, (DigestItem(papers[2], 0.5),), 0),
    )
    cache = FreezeCache()
    for notes in ((), (odd, "A source failed")):
        digest = Digest(DAY1.date(), odd, sections, 2000, notes)
        content, records = freeze_compact(digest, cache)
        assert content == json.dumps(json.loads(content), ensure_ascii=False, sort_keys=True)
        assert thaw_compact(content, records) == digest
        assert (content, records) == freeze_compact(digest)  # the cache changes nothing
    assert len(cache.profiles) == 2


def test_cli_subscribe_confirm_send(project: Path) -> None:
    runner = CliRunner()
    base = ["--config", str(project / "config.toml")]
    at = ["--now", "2025-10-15T08:00:00+00:00"]
    assert runner.invoke(cli, [*base, "ingest"]).exit_code == 0
    result = runner.invoke(
        cli,
        [
            *base,
            *at,
            "subscribe",
            "Ada@Example.org",
            "-k",
            "LoRA, adapters",
            "--timezone",
            "Europe/Berlin",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "subscribed ada@example.org (pending; profiles: papers); confirmation email written to "
        f"{project / 'var' / 'outbox'}/{next((project / 'var' / 'outbox').glob('*.eml')).name}"
        " (the outbox: nothing was mailed); its link needs `digest serve` at "
        "http://127.0.0.1:8000/\n"
        f"to confirm now, run: digest confirm {result.stdout.rpartition(' ')[2]}"
    )
    (confirmation,) = messages(project / "var" / "outbox")
    token = confirmation.get_body(("plain",)).get_content().split("token=")[1].split()[0]
    assert (
        runner.invoke(cli, [*base, *at, "confirm", token]).stdout == "confirmed ada@example.org\n"
    )
    bad = runner.invoke(cli, [*base, *at, "confirm", token[:-4] + "0000"])
    assert bad.exit_code == 2 and "not valid" in bad.stderr
    sent = runner.invoke(cli, [*base, "--now", DAY1.isoformat(), "send", "--json"])
    assert sent.exit_code == 0 and '"sent": 1' in sent.stdout
    bad = runner.invoke(cli, [*base, "subscribe", "not-an-address", "-k", "x"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: 'not-an-address' is not a valid")


# -- killed mid-run: every subscriber ends with their digest, never two different ones ---


def test_sigkill_mid_send_then_rerun_delivers_each_digest_once(seeded_project: Path) -> None:
    project = seeded_project
    handler = KillPoint()
    with SmtpServer(handler) as server:
        config = smtp_config(project, server.port)
        count = 40
        with seeded(config) as store:
            for i in range(count):
                subscribe(
                    config,
                    store,
                    f"reader{i}@example.org",
                    PEFT if i % 2 else SPEECH,
                    DAY1 - timedelta(days=1),
                    confirmed=True,
                )
        digest = str(Path(sys.executable).parent / "digest")
        cmd = [digest, "--now", DAY1.isoformat(), "--allow-local-links", "send"]
        env = {**os.environ, "DIGEST_SECRET": "test-secret-0123456789abcdef-0123"}
        rng = random.Random(5)
        progress = []
        for _ in range(4):  # start, kill while a message waits for its reply, again
            handler.arm(len(server.received) + rng.randint(1, 8))
            proc = subprocess.Popen(
                cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            assert handler.reached.wait(60), "the send run never reached the kill point"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            handler.resume.set()
            progress.append(len(server.received))
        handler.arm(0)
        final = subprocess.run(
            cmd, cwd=project, env=env, capture_output=True, text=True, timeout=120
        )
        assert final.returncode == 0, final.stderr
        per_reader: dict[str, set[str]] = {}
        bodies: dict[str, set[str]] = {}
        for got in server.received:
            msg = got.message
            per_reader.setdefault(msg["To"], set()).add(msg["Message-ID"])
            bodies.setdefault(msg["To"], set()).add(msg.get_body(("plain",)).get_content())
        assert len(per_reader) == count  # none missing
        assert all(len(ids) == 1 for ids in per_reader.values())  # a resend is the same message
        assert all(len(b) == 1 for b in bodies.values())  # never two different digests
        resent = sum(Counter(m.message["To"] for m in server.received).values()) - count
        with Store(config.store_path) as store:
            assert {d.state for d in store.deliveries()} == {"sent"}
            assert len(store.deliveries()) == count
        assert progress[-1] < count  # the kills did interrupt runs
        assert resent >= 4  # each kill left one accepted message unacknowledged: resent
        print(
            f"\nreceived after each kill: {progress}; {resent} resend(s) of an accepted "
            "message (same Message-ID)"
        )


# -- the send loop against the in-memory backend (no network): outcomes and backoff ---------


def _scripted(*statuses: str, retry_after: float | None = None) -> MemoryBackend:
    """A backend answering the given statuses in turn, then "sent"."""
    queue = list(statuses)

    def answer(email: OutgoingEmail) -> SendResult:
        status = queue.pop(0) if queue else "sent"
        return SendResult(email.delivery_id, status, f"scripted {status}", retry_after)  # type: ignore[arg-type]

    return MemoryBackend(answer)


def test_backoff_doubles_honours_retry_after_and_gives_up(seeded_config: Config) -> None:
    config = seeded_config
    store = seeded(config, ("ada@example.org", PEFT))
    backend = _scripted(*["retry"] * 5, retry_after=150)
    at = DAY1
    waits = []
    for _ in range(4):
        assert send(config, store, backend, at).retry == 1
        (d,) = store.deliveries()
        assert d.next_attempt_at is not None
        waits.append(d.next_attempt_at - at)
        assert send(config, store, backend, d.next_attempt_at - timedelta(seconds=1)).retry == 0
        at = d.next_attempt_at
    # 1, 2, 4, 8 minutes, but never sooner than the server's Retry-After (150 s)
    assert waits == [
        timedelta(seconds=150),
        timedelta(seconds=150),
        timedelta(minutes=4),
        timedelta(minutes=8),
    ]
    report = send(config, store, backend, at)  # the 5th attempt: max_attempts = 5
    assert (report.retry, report.failed) == (0, 1)
    (d,) = store.deliveries()
    assert d.state == "failed" and d.reason == "gave up after 5 attempts: scripted retry"
    assert len(backend.attempts) == 5 and backend.sent == []
    # one Message-ID for every attempt: a retry is the same message
    assert len({e.message_id for e in backend.attempts}) == 1
    store.close()


def test_every_reader_gets_a_message_of_their_own(seeded_config: Config) -> None:
    config = seeded_config
    store = seeded(config, ("ada@example.org", PEFT), ("bob@example.org", SPEECH))
    backend = MemoryBackend()
    report = send(config, store, backend, DAY1)
    assert (report.claimed, report.sent) == (2, 2)
    by_reader = {e.to: e for e in backend.sent}
    assert set(by_reader) == {"ada@example.org", "bob@example.org"}
    assert "== peft ==" in by_reader["ada@example.org"].text
    assert "== speech ==" in by_reader["bob@example.org"].text
    tokens = {e.unsubscribe_url for e in backend.sent}
    assert len(tokens) == 2 and all("unsubscribe?token=" in t for t in tokens)
    store.close()


def test_the_readme_journey_gives_a_first_digest_of_what_just_arrived(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest run` (ingest at 09:00), subscribe, confirm, send: the first digest holds the
    papers that arrived in the day before it, whatever dates their capture printed (the
    seed captures are from 2025)."""
    runner = CliRunner()

    def digest(at: str, *args: str, day: str = "2026-12-01") -> str:
        result = runner.invoke(cli, ["--now", f"{day}T{at}:00+00:00", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    monkeypatch.chdir(project)
    digest("09:00", "run")
    digest("09:05", "subscribe", "you@example.org", "-k", "LoRA, TTS")
    (confirmation,) = messages(project / "var" / "outbox")
    token = confirmation.get_body(("plain",)).get_content().split("token=")[1].split()[0]
    digest("09:06", "confirm", token)
    plan = digest("09:10", "send", "--dry-run")
    (line,) = [x for x in plan.splitlines() if x.startswith("would send")]
    items = int(line.split(": ")[1].split()[0])
    assert items > 0 and "1 due, 1 would get a digest, 0 with nothing new" in plan
    assert '"sent": 1' in digest("09:10", "send", "--json")
    digests = [m for m in messages(project / "var" / "outbox") if "Confirm" not in m["Subject"]]
    (first,) = digests
    assert (
        first["To"] == "you@example.org"
        and "== papers ==" in first.get_body(("plain",)).get_content()
    )
    # The next morning nothing new has arrived: nothing to send, however old the papers
    later = digest("09:10", "send", "--json", day="2026-12-02")
    assert '"empty": 1' in later and '"sent": 0' in later


def test_a_claim_is_small_and_its_items_are_shared(seeded_config: Config) -> None:
    """Compact claims: a reader's content is keys and scores (well under 4 KB for two full
    sections); readers who got the same paper for the same keywords share its record."""
    config = seeded_config
    broad = make_profile("broad", ("LoRA", "quantization", "distillation"))
    readers = [(f"r{i}@example.org", p) for i, p in enumerate([PEFT, broad, PEFT, broad])]
    store = seeded(config, *readers)
    for address, _ in readers:  # two sections each: a PEFT one and a speech one
        subscribe(config, store, address, SPEECH, DAY1 - timedelta(days=1))
    assert send(config, store, MemoryBackend(), DAY1).sent == 4
    deliveries = store.deliveries()
    sizes = [len(d.content.encode()) for d in deliveries]
    items = [i for d in deliveries for s in thawed(store, d).sections for i in s.items]
    full = thawed(store, deliveries[0]).sections
    assert max(sizes) < 4096 and [len(s.items) for s in full] == [10, 10]
    print(f"\nclaim content bytes: {sorted(sizes)}")
    keys = [k for d in deliveries for k in item_keys(d.content)]
    assert len(set(keys)) < len(keys) == len(items)  # shared, not copied per reader
    store.close()


def test_a_retry_from_the_store_is_the_message_first_sent_from_memory(
    seeded_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run sends what it just claimed from the planner's digests in memory; a retry (or
    a resend after a crash) thaws the claim from the store. Both must be the same message:
    same subject and Message-ID, the same bodies but for the links' signed tokens (made at
    each attempt's time). One claim a transaction: a later claim leaves out the item
    records an earlier one wrote, and still thaws whole."""
    monkeypatch.setattr("digest.send.CLAIM_BATCH", 1)
    config = seeded_config
    broad = make_profile("broad", ("LoRA", "quantization", "distillation"))
    store = seeded(
        config,
        ("ada@example.org", PEFT),
        ("bo@example.org", SPEECH),
        ("cy@example.org", broad),
    )
    two = (make_profile("tts", ("TTS",)), make_profile("diffusion", ("diffusion",)))
    for profile in two:  # a reader with two sections
        subscribe(config, store, "dee@example.org", profile, DAY1 - timedelta(days=1),
                  confirmed=True)  # fmt: skip
    backend = _scripted(*["retry"] * 4)
    assert send(config, store, backend, DAY1).retry == 4
    first = {e.to: e for e in backend.attempts}
    later = DAY1 + timedelta(hours=1)
    assert send(config, store, backend, later).sent == 4
    again = {e.to: e for e in backend.attempts[4:]}
    assert sorted(first) == sorted(again) and len(first) == 4

    def untokened(text: str) -> str:
        return re.sub(r"token=[^\s\"&<>]+", "token=T", text)

    for to, e in first.items():
        r = again[to]
        assert (r.subject, r.message_id) == (e.subject, e.message_id)
        assert untokened(r.text) == untokened(e.text)
        assert untokened(r.html) == untokened(e.html)
        assert "token=" in e.html and "No new matches" not in e.subject  # a real digest
    store.close()


def test_a_claim_made_before_paper_records_still_thaws(seeded_config: Config) -> None:
    """Item records written before papers had records of their own held the paper inline:
    a claim left pending across the upgrade must still resend the same digest."""
    config = seeded_config
    with Store(config.store_path) as store:
        papers = store.papers()
    digest = pipeline.build_digest(config, papers, [PEFT, SPEECH], DAY1)
    content, records = freeze_compact(digest)
    old = {}
    for key in item_keys(content):
        raw = json.loads(records[key])
        raw["paper"] = json.loads(records[raw.pop("paper_ref")])
        old[key] = json.dumps(raw)
    assert thaw_compact(content, old) == digest
    assert records_for([content], lambda keys: {k: old[k] for k in keys if k in old}) == old


def test_a_send_collects_cycles_by_hand_while_it_claims_and_delivers(
    seeded_config: Config,
) -> None:
    """The claim-and-deliver loop runs without automatic cyclic collection (its caches
    grow all along: digest.memory), and the collector is back on when the send returns."""
    import gc

    store = seeded(seeded_config, ("ada@example.org", PEFT), ("bob@example.org", SPEECH))
    seen: list[bool] = []

    def handler(message: OutgoingEmail) -> SendResult:
        seen.append(gc.isenabled())
        return SendResult(message.delivery_id, "sent")

    report = send(seeded_config, store, MemoryBackend(handler), DAY1)
    assert report.sent == 2 and seen == [False, False]
    assert gc.isenabled()
    store.close()


def test_a_send_collects_once_a_page_of_readers(
    seeded_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a page made and dropped goes before the next page is planned: one collection
    a page (here a page is one reader), not one at the end."""
    import contextlib
    from collections.abc import Callable, Iterator

    import digest.send as send_module
    from digest.memory import collecting_by_hand

    calls: list[int] = []

    @contextlib.contextmanager
    def counted() -> Iterator[Callable[[], None]]:
        with collecting_by_hand() as collect:

            def counting() -> None:
                calls.append(1)
                collect()

            yield counting

    monkeypatch.setattr(send_module, "collecting_by_hand", counted)
    monkeypatch.setattr(send_module, "PLAN_PAGE", 1)
    readers = [(f"r{i}@example.org", PEFT if i % 2 else SPEECH) for i in range(3)]
    store = seeded(seeded_config, *readers)
    report = send(seeded_config, store, MemoryBackend(), DAY1)
    assert report.sent == 3 and len(calls) == 3
    store.close()
