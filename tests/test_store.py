"""The SQLite store on a real file: dedup, merge, idempotence, migrations, rollback."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.errors import StoreError
from digest.model import Claim, Paper
from digest.rank import make_profile
from digest.sources.listing import parse
from digest.store import SCHEMA_VERSION, Store, merge

from .conftest import SEEDS
from .factories import make_paper

T0 = datetime(2025, 10, 16, tzinfo=UTC)


def paper(title: str = "Met$^2$Net: Forecasting", **kw: object) -> Paper:
    """A paper from source "a", first seen at T0."""
    return replace(make_paper(title, seen=T0, sources=("a",)), **kw)  # type: ignore[arg-type]


def ingest_seeds(store: Store) -> list[tuple[int, int, int]]:
    out = []
    for f in sorted(SEEDS.glob("*.txt")):
        papers = parse(
            f.read_bytes(),
            origin=f.name,
            source="seeds",
            captured=date(2025, 12, 31),
            warn=lambda w: None,
        )
        c = store.add_papers(papers)
        out.append((c.new, c.updated, c.unchanged))
    return out


def test_seeds_give_331_papers_and_reingest_changes_nothing(store: Store) -> None:
    first = ingest_seeds(store)
    assert sum(n for n, _, _ in first) == 331
    before = store.papers()
    again = ingest_seeds(store)
    assert all(n == 0 and u == 0 for n, u, _ in again)
    assert store.papers() == before
    assert store.count_papers() == 331


def test_latex_spellings_are_one_paper(store: Store) -> None:
    store.add_papers([paper("Met$^2$Net: Forecasting")])
    counts = store.add_papers([paper("Met^2Net: Forecasting")])
    assert (counts.new, store.count_papers()) == (0, 1)


def test_merge_keeps_the_richer_record(store: Store) -> None:
    bare = paper(abstract="Short.")
    rich = paper(
        abstract="A longer abstract here.",
        authors_count=4,
        published=date(2025, 7, 23),
        upvotes=3,
        sources=("b",),
        first_seen=T0.replace(day=20),
        last_seen=T0.replace(day=20),
    )
    store.add_papers([bare])
    assert store.add_papers([rich]).updated == 1
    store.add_papers([replace(bare, upvotes=1, first_seen=T0.replace(day=1))])
    (got,) = store.papers()
    assert got.abstract == "A longer abstract here."
    assert (got.authors_count, got.published, got.upvotes) == (4, date(2025, 7, 23), 3)
    assert got.sources == ("a", "b")
    assert got.first_seen == T0.replace(day=1) and got.last_seen == T0.replace(day=20)


def test_merge_never_loses_a_value() -> None:
    old = paper(organization="Deepmind", upvotes=8)
    merged = merge(old, paper(upvotes=2))
    assert (merged.organization, merged.upvotes, merged.id) == ("Deepmind", 8, old.id)


def test_same_arxiv_id_is_the_same_paper(store: Store) -> None:
    store.add_papers([paper("First Title", id="2401.00001", arxiv_id="2401.00001")])
    store.add_papers([paper("Retitled Version", id="2401.00001", arxiv_id="2401.00001")])
    assert store.count_papers() == 1


def test_since_filters_on_first_seen(store: Store) -> None:
    store.add_papers(
        [
            paper("Old", first_seen=T0, last_seen=T0),
            paper("New", first_seen=T0.replace(month=11), last_seen=T0.replace(month=11)),
        ]
    )
    assert [p.title for p in store.papers(since=date(2025, 11, 1))] == ["New"]


def test_a_failed_batch_rolls_back(store: Store) -> None:
    store.add_papers([paper("Kept")])
    broken = paper("Broken", published="not a date")  # fails mid-batch, after one insert
    with pytest.raises(AttributeError):
        store.add_papers([paper("Would be new"), broken])
    assert [p.title for p in store.papers()] == ["Kept"]


def test_schema_version_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    with Store(db) as s:
        s.add_papers([paper()])
        assert s.schema_version == SCHEMA_VERSION
    with Store(db) as s:
        assert s.count_papers() == 1
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        Store(db)


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(bad)


def test_a_revision_of_an_unknown_paper_is_not_new(store: Store) -> None:
    """An arXiv 'replace' for a paper never seen is a revision: not stored as new."""
    counts = store.add_papers([replace(paper("Revised"), revision=True)])
    assert (counts.new, store.count_papers()) == (0, 0)


def test_a_revision_of_a_known_paper_updates_it_and_keeps_its_day(store: Store) -> None:
    store.add_papers([paper("Known", abstract="short")])
    later = T0 + timedelta(days=3)
    revised = replace(
        paper("Known", abstract="a longer abstract"),
        revision=True,
        first_seen=later,
        last_seen=later,
    )
    assert store.add_papers([revised]).updated == 1
    (got,) = store.papers()
    assert (got.abstract, got.first_seen, got.last_seen) == ("a longer abstract", T0, later)


def _open_when_all_are_ready(db: str, ready: Any, errors: Any) -> None:
    """One of the racing processes: wait until all have started, then open the store."""
    ready.wait(60)
    try:
        Store(db).close()
    except BaseException as exc:
        errors.put(f"{type(exc).__name__}: {exc}")


def test_two_processes_opening_a_new_store_at_once(tmp_path: Path) -> None:
    """Both migrate-or-wait; neither fails with 'table already exists'.

    Real processes, each with its own connection, forked by a forkserver that imported the
    store once (a fresh interpreter per process spent most of this test on imports); a
    barrier lets the four open the new file at the same moment."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["digest.store", __name__])
    db = tmp_path / "race.sqlite3"
    for _ in range(5):
        db.unlink(missing_ok=True)
        ready, errors = context.Barrier(4), context.Queue()
        procs = [
            context.Process(target=_open_when_all_are_ready, args=(str(db), ready, errors))
            for _ in range(4)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        found = [errors.get(timeout=60) for _ in range(errors.qsize())]
        assert [p.exitcode for p in procs] == [0] * 4 and found == [], found
        with Store(db) as s:
            assert s.schema_version == SCHEMA_VERSION


def test_hostile_values_are_stored_not_fatal(store: Store) -> None:
    """A lone surrogate or a count SQLite cannot hold never aborts an ingest."""
    odd = paper("Lone \ud800 surrogate", upvotes=10**30, authors_count=10**25)
    assert store.add_papers([odd]).new == 1
    (got,) = store.papers()
    assert got.title == "Lone ? surrogate" and got.upvotes == 0 and got.authors_count is None


def test_subscribers_are_read_a_page_at_a_time_with_their_profiles(tmp_path: Path) -> None:
    """`subscriber_page` walks the list by id (each with all its profiles, in name order);
    `subscribers_by_id` finds a page's readers, more than one IN (...) can hold."""
    now = datetime(2025, 10, 16, tzinfo=UTC)
    with Store(tmp_path / "s.sqlite3") as store:
        for n in range(1, 2_002):
            email = f"r{n}@example.org"
            store.upsert_subscriber(
                email, make_profile("b", ("LoRA",)), now=now, confirmed=n % 3 > 0
            )
            if n % 500 == 0:
                store.upsert_subscriber(email, make_profile("a", ("TTS",)), now=now)
        seen, after = [], 0
        while page := store.subscriber_page(after_id=after, limit=700, status="confirmed"):
            assert len(page) <= 700
            seen += page
            after = page[-1].id
        assert [s.email for s in seen] == [f"r{n}@example.org" for n in range(1, 2_002) if n % 3]
        (r500,) = [s for s in seen if s.email == "r500@example.org"]
        assert [p.name for p in r500.profiles] == ["a", "b"]
        everyone = store.subscribers_by_id([*range(2_001, 0, -1), 99_999])
        assert len(everyone) == 2_001 and everyone[500].email == "r500@example.org"
        assert [p.name for p in everyone[500].profiles] == ["a", "b"]
        assert store.subscribers_by_id([]) == {}


def test_a_claim_that_exists_is_skipped_with_its_ledger_and_records(tmp_path: Path) -> None:
    """Only new claims land (a delivery id or a (reader, day) taken already, or listed
    twice in one batch, is skipped), and with them their ledger rows and item records."""
    now = datetime(2025, 10, 16, 7, tzinfo=UTC)
    day = now.date()
    with Store(tmp_path / "s.sqlite3") as store:
        paper = make_paper("One", seen=now)
        other = make_paper("Two", seen=now)
        store.add_papers([paper, other], arrived_at=now)
        ids = [store.upsert_subscriber(f"r{n}@example.org", None, now=now)[0].id for n in (1, 2)]

        def claim(did: str, sid: int, pid: str, key: str) -> Claim:
            return Claim(did, sid, day, None, now, "{}", (pid,), 2, {key: f'"{key}"'})

        assert store.claim_deliveries([claim("d1", ids[0], paper.id, "k1")], now) == ["d1"]
        again = [
            claim("d1", ids[1], other.id, "k2"),  # the id is taken
            claim("dx", ids[0], other.id, "k3"),  # reader 1 has today's digest
            claim("d2", ids[1], paper.id, "k4"),  # new
            claim("d2", ids[1], other.id, "k5"),  # listed twice: the first stands
        ]
        assert store.claim_deliveries(again, now) == ["d2"]
        assert sorted(d.id for d in store.deliveries()) == ["d1", "d2"]
        assert store.sent_paper_ids(ids[0]) == {paper.id}
        assert store.sent_paper_ids(ids[1]) == {paper.id}
        keys = ["k1", "k2", "k3", "k4", "k5"]
        assert sorted(store.frozen_items(keys)) == ["k1", "k4"]
        assert store.claim_deliveries([], now) == []
