"""Stores made by every released schema version open, upgrade and read back.

tests/fixtures/store/vN.sqlite3 are real files as version N left them, made by
tests/fixtures/store/make_fixtures.py (the released steps, then rows that version could
hold). Each is copied, opened with `Store` (which upgrades it) and read through the
public API only.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from digest.errors import StoreError
from digest.frozen import thaw_digest
from digest.model import Delivery, FetchRecord, Keyword, Paper
from digest.store import SCHEMA_VERSION, IngestCounts, Store, schema
from digest.store.schema import MIGRATIONS, collect_steps

from .conftest import FIXTURES

STORES = FIXTURES / "store"
RELEASED = sorted(int(p.stem[1:]) for p in STORES.glob("v*.sqlite3"))
AT_7 = datetime(2025, 10, 16, 7, tzinfo=UTC)
AT_8 = datetime(2025, 10, 16, 8, tzinfo=UTC)
NEXT_DAY = datetime(2025, 10, 17, 7, tzinfo=UTC)

PAPERS = [  # newest first_seen first, as papers() returns them
    Paper(
        id="tf5be50674f9038e",
        title="Met$^2$Net: Forecasting",
        abstract="",
        sources=("seeds",),
        first_seen=AT_8,
        last_seen=AT_8,
    ),
    Paper(
        id="2510.12345",
        title="LoRA for Video Diffusion",
        abstract="Low-rank adapters; a ';' inside the text, and “quotes”.",
        published=date(2025, 10, 15),
        upvotes=42,
        authors_count=7,
        organization="Deepmind",
        arxiv_id="2510.12345",
        url="https://arxiv.org/abs/2510.12345",
        sources=("hf-daily", "seeds"),
        first_seen=AT_7,
        last_seen=AT_8,
    ),
]
#: ada's profiles as (name, keywords, exclude, max_items, min_score): stored as typed, a
#: JSON list of strings. Should profiles come to be stored parsed, a schema step must turn
#: these rows into the new form, and this is what they must read back as.
#: As typed in the older versions (strings), parsed by the step to version 5.
ADA_PROFILES = [
    (
        "default",
        (Keyword("LoRA"), Keyword("video diffusion", phrase=True), Keyword("TTS", weight=2.0)),
        (Keyword("survey"),),
        10,
        0.2,
    ),
    ("speech", (Keyword("TTS"),), (), None, None),
]


#: Stored parsed by version 5 (read back as it is).
BOB_VOICE = (
    "voice",
    (Keyword("speech"), Keyword("text to speech", phrase=True, weight=2.0)),
    (Keyword("survey"),),
    None,
    None,
)


def opened(version: int, tmp_path: Path) -> Store:
    """A copy of the version's fixture, opened (so upgraded) by Store."""
    copy = tmp_path / f"v{version}.sqlite3"
    shutil.copyfile(STORES / f"v{version}.sqlite3", copy)
    return Store(copy)


def profile_fields(store: Store, email: str) -> list[tuple[object, ...]]:
    found = store.subscriber_by_email(email)
    assert found is not None
    return [(p.name, p.keywords, p.exclude, p.max_items, p.min_score) for p in found.profiles]


def delivery_fields(d: Delivery) -> tuple[object, ...]:
    return (
        d.id,
        d.email,
        d.digest_date,
        d.state,
        d.attempts,
        d.next_attempt_at,
        d.reason,
        d.window_start,
        d.window_end,
        d.created_at,
        d.updated_at,
        d.sent_at,
        d.papers_upto,
    )


def test_every_older_version_has_a_fixture() -> None:
    """Releasing version N+1 makes N an older version: run make_fixtures.py for it."""
    assert set(range(1, SCHEMA_VERSION)) <= set(RELEASED)
    assert max(RELEASED) <= SCHEMA_VERSION


@pytest.mark.parametrize("version", RELEASED)
def test_an_old_store_is_upgraded_and_reads_back(version: int, tmp_path: Path) -> None:
    with opened(version, tmp_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.papers() == PAPERS
        assert store.count_papers() == 2
        # arrival: first_seen for rows older than version 6; the bare paper came a day late
        assert store.row_arrived_by(AT_8) == (1 if version >= 6 else 2)
        assert bool(store.frozen_items(["2510.12345:0"])) == (version >= 6)
        # the rebuild of `papers` (version 8) keeps the analysed text and the sources
        kept = store.paper_terms(["2510.12345"], "terms-v1")
        assert kept == ({"2510.12345": b"\x00opaque\xff"} if version >= 7 else {})
        if version < 2:
            assert store.subscribers() == [] and store.deliveries() == []
            return
        assert [(s.id, s.email, s.status) for s in store.subscribers()] == [
            (1, "ada@example.org", "confirmed"),
            (2, "bob@example.org", "unsubscribed"),
            *([(3, "dee@example.org", "confirmed")] if version >= 9 else []),
            *([(4, "eve@example.org", "paused")] if version >= 10 else []),
        ]
        if version >= 9:  # pausing came with version 10: an upgraded reader is not paused
            assert store.set_paused(3, True, NEXT_DAY)
            assert store.subscriber(3).status == "paused"  # type: ignore[union-attr]
            paused = ["dee@example.org", *(["eve@example.org"] if version >= 10 else [])]
            assert [s.email for s in store.subscribers("paused")] == paused
            assert store.set_paused(3, False, NEXT_DAY)
        ada = store.subscriber(1)
        assert ada is not None
        assert (ada.timezone, ada.send_at, ada.frequency, ada.notify_empty) == (
            "Europe/London",
            "06:30",
            "daily",
            True,
        )
        assert (ada.created_at, ada.confirmed_at, ada.unsubscribed_at) == (AT_7, AT_7, None)
        assert profile_fields(store, "ada@example.org") == ADA_PROFILES
        bob = [] if version < 5 else [BOB_VOICE]
        assert profile_fields(store, "bob@example.org") == bob
        bare = {"tf5be50674f9038e"} if version >= 8 else set()
        assert store.sent_paper_ids(1) == {"2510.12345", *bare}
        # the planner's view of the ledger (kept in deliveries from version 9 on)
        readers, positions = store.sent_pairs(["tf5be50674f9038e", "2510.12345"], 0)
        assert sorted(zip(readers, positions, strict=True)) == [(1, 0)] * len(bare) + [(1, 1)]
        assert store.sent_pairs(["tf5be50674f9038e"], 2) == store.sent_pairs([], 0)
        last = store.last_digests([1, 2, 99])
        assert sorted(last) == [1, 2]
        assert last[1].digest_date == date(2025, 10, 17 if version >= 4 else 16)
        assert last[2].digest_date == date(2025, 10, 16)
        assert store.acquire_lease("scheduler", "new-host:1:1", AT_7, timedelta(minutes=2)) == (
            "old-host:1234:5678"
        )
        assert_deliveries(store, version)


def assert_deliveries(store: Store, version: int) -> None:
    sent = ("d-sent", "ada@example.org", date(2025, 10, 16), "sent", 1, None, "250 OK")
    retry = ("d-retry", "bob@example.org", date(2025, 10, 16), "retry", 2, NEXT_DAY)
    expected = [
        (*sent, None, AT_7, AT_7, AT_8, AT_8, None),
        (*retry, "421 try later", AT_7, AT_8, AT_7, AT_8, None, None),
    ]
    if version >= 4:
        upto = ("d-upto", "ada@example.org", date(2025, 10, 17), "pending", 0, None, "")
        expected.insert(0, (*upto, AT_8, NEXT_DAY, NEXT_DAY, NEXT_DAY, None, 2))
    assert [delivery_fields(d) for d in store.deliveries()] == expected
    due = ["d-retry", "d-upto"] if version >= 4 else ["d-retry"]  # oldest claim first
    assert store.due_delivery_ids(NEXT_DAY) == due
    (frozen,) = store.deliveries(state="sent")
    digest = json.loads(frozen.content)
    (section,) = digest["sections"]
    assert section["items"][0]["paper"]["title"] == "LoRA for Video Diffusion"
    assert section["items"][0]["paper"]["abstract"].endswith("and “quotes”.")
    # a digest frozen by an older version still thaws (a resend after the upgrade)
    (thawed,) = thaw_digest(frozen.content).sections
    assert thawed.items[0].paper.title == "LoRA for Video Diffusion"
    assert thawed.profile.keywords[0].text == section["profile"]["keywords"][0]["text"]


@pytest.mark.parametrize("version", RELEASED)
def test_fetch_state_reads_back_from_version_3(version: int, tmp_path: Path) -> None:
    with opened(version, tmp_path) as store:
        hf = store.fetch_state("hf-daily")
        if version < 3:
            assert hf is None
            return
        assert hf == FetchRecord(
            "https://huggingface.co/api/daily_papers",
            '{"etag": "\\"abc123\\"", "last_modified": "Thu, 16 Oct 2025 07:00:00 GMT"}',
        )
        assert store.fetch_state("arxiv-cs.CL") == FetchRecord(
            "https://rss.arxiv.org/rss/cs.CL", "{}"
        )


@pytest.mark.parametrize("version", RELEASED)
def test_an_upgraded_store_takes_writes(version: int, tmp_path: Path) -> None:
    """The tables and columns a version lacked are there after the upgrade."""
    new = Paper(id="2510.99999", title="New", abstract="", first_seen=NEXT_DAY, last_seen=NEXT_DAY)
    with opened(version, tmp_path) as store:
        assert store.add_papers([new]).new == 1
        assert store.newest_paper_row() == 3
        # version 8: a paper may share its title with another (a different link)
        twin = replace(new, id="t-twin", arxiv_id=None, url="https://example.org/other")
        rich = replace(new, authors=("Ada Lovelace",), keywords=("cs.CL",), code_stars=3)
        assert store.add_papers([replace(twin, title=PAPERS[1].title), rich]) == IngestCounts(
            new=1, updated=1
        )
        stored = {p.id: p for p in store.papers()}
        assert stored["2510.99999"].authors == ("Ada Lovelace",)
        assert stored["2510.99999"].keywords == ("cs.CL",)
        assert stored["t-twin"].title == stored["2510.12345"].title
        store.save_fetch_state("new-feed", "https://example.org/feed", "{}", NEXT_DAY, "ok")
        assert store.fetch_state("new-feed") == FetchRecord("https://example.org/feed", "{}")
        (sub, created) = store.upsert_subscriber("cy@example.org", None, now=NEXT_DAY)
        assert created and sub.status == "pending"


@pytest.mark.parametrize("version", RELEASED)
def test_an_upgraded_schema_is_a_new_stores_schema(version: int, tmp_path: Path) -> None:
    """Whatever version a file started at, it ends with the same tables and indexes."""
    opened(version, tmp_path).close()
    Store(tmp_path / "new.sqlite3").close()

    def schema_of(path: Path) -> list[tuple[str, str, str]]:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        db.close()
        return rows

    assert schema_of(tmp_path / f"v{version}.sqlite3") == schema_of(tmp_path / "new.sqlite3")


def test_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    shutil.copyfile(STORES / f"v{max(RELEASED)}.sqlite3", path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError) as caught:
        Store(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in message
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()


def test_a_failing_step_is_rolled_back_alone(tmp_path: Path) -> None:
    """Each step runs in its own transaction: the steps before a failing one stay done,
    the failing one leaves nothing behind, and the message names the step."""
    if SCHEMA_VERSION - min(RELEASED) < 2:
        pytest.skip("needs a fixture two or more versions old")
    start = min(RELEASED)

    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        db.execute("SELECT * FROM no_such_table")

    released, MIGRATIONS[start + 1] = MIGRATIONS[start + 1], broken
    try:
        with pytest.raises(StoreError, match=f"upgrading the schema to version {start + 2} failed"):
            opened(start, tmp_path)
    finally:
        MIGRATIONS[start + 1] = released
    path = tmp_path / f"v{start}.sqlite3"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == start + 1
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "half_done" not in tables
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_every_step_function_is_a_migration() -> None:
    """An update_from_N_to_N+1 written below the MIGRATIONS line would be missed."""
    steps = {name for name in vars(schema) if name.startswith("update_from_")}
    assert steps == {step.__name__ for step in MIGRATIONS}
    assert [step.__name__ for step in MIGRATIONS] == [
        f"update_from_{n}_to_{n + 1}" for n in range(SCHEMA_VERSION)
    ]


def test_steps_must_go_one_version_at_a_time() -> None:
    def step(db: sqlite3.Connection) -> None: ...

    assert collect_steps({"update_from_0_to_1": step, "update_from_1_to_2": step}) == [step] * 2
    with pytest.raises(RuntimeError, match="no schema step from version 1 to 2"):
        collect_steps({"update_from_0_to_1": step, "update_from_2_to_3": step})
    with pytest.raises(RuntimeError, match="from one version to the next"):
        collect_steps({"update_from_0_to_2": step})


def test_step_to_5_parses_typed_profiles_and_drops_nothing(tmp_path: Path) -> None:
    """`-term` joins the exclusions; a keyword the parser refuses is kept as a plain term."""
    copy = tmp_path / "v4.sqlite3"
    shutil.copyfile(STORES / "v4.sqlite3", copy)
    with sqlite3.connect(copy) as db:
        db.execute(
            "INSERT INTO subscriber_profiles (subscriber_id, name, keywords, exclude)"
            " VALUES (1, 'odd', ?, ?)",
            (json.dumps(["LoRA", "-survey", '"world model"^1.5']), json.dumps(["benchmark"])),
        )
        db.execute(
            "INSERT INTO subscriber_profiles (subscriber_id, name, keywords, exclude)"
            " VALUES (1, 'refused', ?, '[]')",
            (json.dumps(["LoRA^-1"]),),
        )
    db.close()
    with Store(copy) as store:
        found = store.subscriber_by_email("ada@example.org")
        assert found is not None
        profiles = {p.name: p for p in found.profiles}
    odd = profiles["odd"]
    assert odd.keywords == (Keyword("LoRA"), Keyword("world model", True, 1.5))
    assert odd.exclude == (Keyword("benchmark"), Keyword("survey"))
    assert profiles["refused"].keywords == (Keyword("LoRA^-1"),)


@pytest.mark.parametrize("version", RELEASED)
def test_an_upgraded_store_gets_an_installation_id_and_keeps_its_delivery_ids(
    version: int, tmp_path: Path
) -> None:
    """Version 11: ids of new deliveries carry the installation; those already claimed
    keep the ids (and so the Message-IDs) they were claimed with."""
    with opened(version, tmp_path) as store:
        made = store.installation_id
        assert re.fullmatch(r"[0-9a-f]{32}", made) and store.installation_id == made
        if version >= 2:
            fixture = STORES / f"v{version}.sqlite3"  # read as it is: no -wal, no -shm
            before = sqlite3.connect(f"file:{fixture}?immutable=1", uri=True)
            ids = {r[0] for r in before.execute("SELECT id FROM deliveries")}
            before.close()
            assert {d.id for d in store.deliveries()} == ids


@pytest.mark.parametrize("version", RELEASED)
def test_an_upgraded_store_keeps_ratings(version: int, tmp_path: Path) -> None:
    """Version 12: a reader's ratings, one per paper, on a store of every older version."""
    with opened(version, tmp_path) as store:
        if version < 2:
            store.add_papers(PAPERS)
        sub, _ = store.upsert_subscriber("rater@example.org", None, now=NEXT_DAY)
        assert store.ratings(sub.id) == []
        assert store.rate(sub.id, "2510.12345", 1, NEXT_DAY)
        assert store.rate(sub.id, "2510.12345", -1, NEXT_DAY, via="manage")
        assert not store.rate(sub.id, "no-such-paper", 1, NEXT_DAY)
        (rating,) = store.ratings(sub.id)
        assert (rating.paper_id, rating.vote, rating.via) == ("2510.12345", -1, "manage")
        assert rating.title == "LoRA for Video Diffusion"
        if version >= 12:  # the fixture's own rating reads back
            bob = store.subscriber_by_email("bob@example.org")
            assert bob is not None
            assert [(r.paper_id, r.vote) for r in store.ratings(bob.id)] == [("2510.12345", 1)]


@pytest.mark.parametrize("version", RELEASED)
def test_an_upgraded_store_keeps_paper_vectors(version: int, tmp_path: Path) -> None:
    """Version 13: a paper's vector, per model; a paper whose text changes loses it (it
    is embedded anew), and so does one that another model's vector replaces."""
    with opened(version, tmp_path) as store:
        if version < 2:
            store.add_papers(PAPERS)
        ids = [p.id for p in store.papers()]
        assert store.papers_lacking_vectors("m") and store.paper_vectors(ids, "m") == {}
        assert store.keep_paper_vectors([(i, b"\x00v\xff") for i in ids], "m") == len(ids)
        assert store.paper_vectors(ids, "m") == dict.fromkeys(ids, b"\x00v\xff")
        assert store.paper_vectors(ids, "other") == {}
        assert store.papers_lacking_vectors("m") == []
        assert store.count_paper_vectors("m") == len(ids)
        assert [p.id for p in store.papers_lacking_vectors("other")] == [
            p.id for _, p in store.arrivals(0, store.newest_paper_row())
        ]
        more = PAPERS[1].abstract + " A source gave the whole abstract later."
        longer = replace(PAPERS[1], abstract=more, first_seen=NEXT_DAY)
        store.add_papers([longer])
        assert [p.id for p in store.papers_lacking_vectors("m")] == ["2510.12345"]


@pytest.mark.parametrize("version", RELEASED)
def test_an_upgraded_store_knows_when_its_readers_are_due(version: int, tmp_path: Path) -> None:
    """Version 15: each reader's next send time, filled by the step from their settings
    and latest digest: Ada (London, 06:30) the day after her latest digest, Dee (UTC,
    07:00, no digest yet) from the day she confirmed; Bob (unsubscribed) and Eve
    (paused) are not due."""
    far = datetime(2030, 1, 1, tzinfo=UTC)
    with opened(version, tmp_path) as store:
        found = store.due_keys(far)
    ada_day = "2025-10-18" if version >= 4 else "2025-10-17"  # d-upto (v4) is of the 17th
    expected = [] if version < 2 else [(f"{ada_day}T05:30:00+00:00", 1)]
    if version >= 9:
        expected.insert(0, ("2025-10-16T07:00:00+00:00", 3))
    assert found == expected
