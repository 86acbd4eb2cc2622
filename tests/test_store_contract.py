"""The store's contract, run against both backends: a SQLite file and a PostgreSQL database.

Small and focused: each test walks one domain (papers, terms, subscribers, deliveries,
ratings, leases, the base) through every public method of it once, on each backend, and
declares the methods it exercises (`@exercises`); the `store` fixture records what a test
really called and fails it when a declared method was not, and
`test_the_contract_covers_every_public_method` fails when a public method of `Store` is
in no test. The PostgreSQL half needs a server (`pg_cluster`): it skips, with the reason,
where none is installed. The behaviour that exists on PostgreSQL only (advisory locks,
partitions, COPY, the CLI on a URL) is tested in tests/test_store_pg.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from digest.bulk import ImportRow
from digest.errors import StoreError
from digest.model import Claim, Keyword, Outcome, Paper, Profile
from digest.store import QueuedUnsubscribe, Store, open_store
from digest.store.schema import SCHEMA_VERSION
from tests.test_store_errors import public_members

T0 = datetime(2025, 10, 16, 7, tzinfo=UTC)
DAY = date(2025, 10, 16)
PROFILE = Profile("default", keywords=(Keyword("LoRA"),), exclude=(Keyword("vision"),))
F = TypeVar("F", bound=Callable[..., Any])

#: test name -> the public Store methods it exercises (checked against what it called).
EXERCISED: dict[str, set[str]] = {}


def exercises(*names: str) -> Callable[[F], F]:
    def mark(test: F) -> F:
        EXERCISED[test.__name__] = set(names)
        return test

    return mark


class Recording:
    """The store, noting each public member a test uses (properties included)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.used: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        self.used.add(name)
        return getattr(self.store, name)


#: Tables a PostgreSQL test starts without rows in (the schema and installation stay).
_TABLES = (
    "ratings, frozen_items, deliveries, subscriber_profiles, subscribers, paper_search,"
    " paper_terms,"
    " paper_vectors, keyword_vectors, term_postings, term_counts, term_blocks, day_index,"
    " related_terms, related_state,"
    " paper_sources, papers, fetch_state, locks"
)


@pytest.fixture(scope="module")
def pg_url(pg_cluster: Any) -> str:
    return str(pg_cluster.create_database("contract"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the test's store (empty, the same one each call) on the backend."""
    if request.param == "sqlite":
        location: Path | str = tmp_path / "digest.sqlite3"
    else:
        location = request.getfixturevalue("pg_url")
        with open_store(location) as first:
            first._db.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY")
    yield lambda: open_store(location)


@pytest.fixture
def store(request: pytest.FixtureRequest, backend: Callable[[], Store]) -> Iterator[Any]:
    with backend() as opened:
        recording = Recording(opened)
        yield recording
    missing = EXERCISED.get(request.function.__name__, set()) - recording.used
    assert not missing, f"declared in @exercises but not called: {sorted(missing)}"


def paper(n: int, **fields: Any) -> Paper:
    seen = fields.pop("first_seen", T0 - timedelta(days=n % 2))
    given: dict[str, Any] = {
        "id": f"2510.{n:05}",
        "title": f"Paper number {n}",
        "abstract": "An abstract.",
        "arxiv_id": f"2510.{n:05}",
        "sources": ("seeds",),
        "first_seen": seen,
        "last_seen": seen,
    }
    return Paper(**(given | fields))


def claim(did: str, sid: int, day: date, ids: tuple[str, ...], upto: int = 2) -> Claim:
    return Claim(did, sid, day, T0 - timedelta(days=1), T0, '{"c": 1}', ids, upto, {did: "{}"})


# -- the contract ---------------------------------------------------------------------------


def test_the_contract_covers_every_public_method() -> None:
    covered = set().union(*EXERCISED.values())
    assert public_members(Store) - {"close"} == covered


@exercises(
    "add_papers",
    "papers",
    "paper",
    "papers_between",
    "paper_days",
    "arrival_days",
    "newest_paper_row",
    "row_arrived_by",
    "arrivals",
    "count_papers",
    "newest_arrival",
)
def test_papers_merge_and_keep_their_arrival_order(store: Any) -> None:
    assert store.newest_arrival() is None
    first = store.add_papers([paper(1), paper(2)], arrived_at=T0)
    assert (first.new, first.updated) == (2, 0)
    later = T0 + timedelta(hours=1)
    richer = paper(1, upvotes=7, authors=("Ada",), sources=("hf",))
    again = store.add_papers([richer, paper(3, first_seen=T0)], arrived_at=later)
    assert (again.new, again.updated, again.unchanged) == (1, 1, 0)
    assert store.count_papers() == 3
    got = store.paper("2510.00001")
    assert (got.upvotes, got.authors, got.sources) == (7, ("Ada",), ("hf", "seeds"))
    assert got.first_seen == T0 - timedelta(days=1) and got.first_seen.tzinfo is not None
    assert [p.id for p in store.papers()] == ["2510.00002", "2510.00003", "2510.00001"]
    assert [p.id for p in store.papers(since=DAY)] == ["2510.00002", "2510.00003"]
    assert [p.id for p in store.papers_between(DAY, DAY + timedelta(1))] == [
        "2510.00002",
        "2510.00003",
    ]
    assert store.paper_days() == [DAY - timedelta(1), DAY]
    assert store.paper_days(DAY) == [DAY]
    assert store.newest_paper_row() == 3
    assert store.row_arrived_by(T0) == 2
    assert [(row, p.id) for row, p in store.arrivals(1, 3)] == [
        (2, "2510.00002"),
        (3, "2510.00003"),
    ]
    assert store.arrival_days(2, 3) == [DAY]
    assert store.newest_arrival() == later


@exercises("keep_paper_terms", "paper_terms", "papers_lacking_terms")
def test_terms_are_kept_per_analysis(store: Any) -> None:
    store.add_papers([paper(1), paper(2)], arrived_at=T0)
    assert [p.id for p in store.papers_lacking_terms("k1", 0)] == ["2510.00001", "2510.00002"]
    assert store.keep_paper_terms([("2510.00001", b"\x00\xffblob")], "k1") == 1
    assert store.paper_terms(["2510.00001", "2510.00002"], "k1") == {"2510.00001": b"\x00\xffblob"}
    assert store.paper_terms(["2510.00001"], "k2") == {}
    assert [p.id for p in store.papers_lacking_terms("k1", 0)] == ["2510.00002"]
    assert [p.id for p in store.papers_lacking_terms("k1", 2)] == []


@exercises("keep_paper_terms", "term_counts", "posting_rows", "backfill_postings", "paper_search")
def test_kept_terms_keep_their_postings(store: Any) -> None:
    from digest.rank.analyzer import analyzer_for
    from digest.rank.postings import make_blocks
    from digest.rank.terms import analyze, encode

    papers = [paper(1, abstract="LoRA adapters for speech."), paper(2)]
    store.add_papers(papers, arrived_at=T0)
    blobs = [(p.id, encode(p, analyze(p, analyzer_for(None)))) for p in papers]
    store.keep_paper_terms(blobs, "k1")
    # and each blob's search row (`rank.searchrows`), under its key only
    assert sorted(store.paper_search(["2510.00001", "2510.00002", "2510.00009"], "k1")) == [
        "2510.00001",
        "2510.00002",
    ]
    assert store.paper_search(["2510.00001"], "k2") == {}
    counts = store.term_counts(["2510.00001", "2510.00002", "2510.00009"], "k1")
    assert (
        sorted(counts) == ["2510.00001", "2510.00002"]
        and store.term_counts(["2510.00001"], "k2") == {}
    )
    (block,) = make_blocks(blobs)
    first = counts["2510.00001"]
    assert (first.slot, first.bits, first.text) == (0, block.bits, block.papers[0][2])
    cells = [(first.block, bucket) for bucket, _ in block.rows]
    assert store.posting_rows(cells) == {
        cell: row for cell, (_, row) in zip(cells, block.rows, strict=True)
    }
    store.keep_paper_terms(blobs[:1], "k1")  # kept again: a new block; the old one stays
    moved = store.term_counts(["2510.00001", "2510.00002"], "k1")
    assert moved["2510.00001"].block > first.block == moved["2510.00002"].block
    store.keep_paper_terms(blobs[1:], "k1")  # now the first block has no paper left: gone
    assert store.posting_rows(cells) == {}
    assert store.backfill_postings() == 0  # a new store has nothing to backfill
    # A store upgraded from version 13: kept blobs without postings, and the marker the
    # upgrade leaves; a paper given twice in one keep gets one slot.
    store.store._db.execute("DELETE FROM term_counts")
    store.store._db.execute("UPDATE postings_state SET backfill_from = 0")
    assert store.term_counts(["2510.00001", "2510.00002"], "k1") == {}
    assert store.backfill_postings(papers=1) == 1 and store.backfill_postings() == 1
    assert store.backfill_postings() == 0
    assert sorted(store.term_counts(["2510.00001", "2510.00002"], "k1")) == [
        "2510.00001",
        "2510.00002",
    ]
    store.keep_paper_terms([blobs[0], blobs[0]], "k1")
    assert store.term_counts(["2510.00001"], "k1")["2510.00001"].slot == 0


@exercises("day_index", "share_day_index")
def test_the_day_index_is_made_once_for_what_it_covers(store: Any) -> None:
    made: list[tuple[int, int]] = []

    def build(low: int, high: int) -> bytes | None:
        made.append((low, high))
        return f"{low}-{high}".encode() if high < 100 else None

    assert store.day_index("k") is None
    first = store.share_day_index("k", 10, 20, T0, build)
    assert (first.low, first.high, first.data) == (10, 20, b"10-20")
    got = store.day_index("k")
    assert (got.low, got.high, got.data) == (10, 20, b"10-20")
    # Covered (a shard whose readers' windows start later): kept, not made again.
    assert store.share_day_index("k", 15, 20, T0, build).data == b"10-20"
    assert made == [(10, 20)]
    # The same papers, an older reader: made for both shards' papers.
    assert store.share_day_index("k", 5, 20, T0, build).data == b"5-20"
    # Papers arrived since: made for the new window only.
    assert store.share_day_index("k", 12, 30, T0, build).data == b"12-30"
    assert made == [(10, 20), (5, 20), (12, 30)]
    # Too big to share: nothing kept, the kept one stays.
    assert store.share_day_index("k", 12, 200, T0, build) is None
    assert store.day_index("k").data == b"12-30"
    # Another key (other code or synonyms): its own row; an old one goes when one is kept.
    later = T0 + timedelta(days=2)
    assert store.share_day_index("k2", 0, 5, later, build).data == b"0-5"
    assert store.day_index("k") is None and store.day_index("k2").high == 5
    assert store.share_day_index("k", 0, 5, later, build).data == b"0-5"
    assert store.day_index("k2").data == b"0-5"  # kept the same day: both stay


@exercises("keep_paper_vectors", "paper_vectors", "papers_lacking_vectors", "count_paper_vectors")
def test_vectors_are_kept_per_model(store: Any) -> None:
    store.add_papers([paper(1), paper(2)], arrived_at=T0)
    assert [p.id for p in store.papers_lacking_vectors("m1")] == ["2510.00001", "2510.00002"]
    assert store.keep_paper_vectors([("2510.00001", b"\x00\x3c" * 3)], "m1") == 1
    assert store.paper_vectors(["2510.00001", "2510.00002"], "m1") == {"2510.00001": b"\x00<" * 3}
    assert store.paper_vectors(["2510.00001"], "m2") == {}
    assert [p.id for p in store.papers_lacking_vectors("m1")] == ["2510.00002"]
    assert [p.id for p in store.papers_lacking_vectors("m1", after_row=2)] == []
    assert (store.count_paper_vectors("m1"), store.count_paper_vectors("m2")) == (1, 0)
    # another model's vector replaces it (one vector a paper: the model in use)
    store.keep_paper_vectors([("2510.00001", b"\x01\x3c" * 3)], "m2")
    assert (store.count_paper_vectors("m1"), store.count_paper_vectors("m2")) == (0, 1)


@exercises("keep_keyword_vectors", "keyword_vectors")
def test_keyword_vectors_are_kept_per_model_and_first_come_stays(store: Any) -> None:
    assert store.keyword_vectors(["lora", "tts"], "m1") == {}
    assert store.keep_keyword_vectors([("lora", b"\x00\x3c" * 3), ("TTS", b"t")], "m1") == 2
    assert store.keyword_vectors(["lora", "tts", "TTS"], "m1") == {
        "lora": b"\x00<" * 3,
        "TTS": b"t",
    }
    assert store.keyword_vectors(["lora"], "m2") == {}
    # kept already (another process embedded it meanwhile): the first one stays
    store.keep_keyword_vectors([("lora", b"other")], "m1")
    store.keep_keyword_vectors([("lora", b"m2's")], "m2")
    assert store.keyword_vectors(["lora"], "m1") == {"lora": b"\x00<" * 3}
    assert store.keyword_vectors(["lora"], "m2") == {"lora": b"m2's"}
    assert store.keyword_vectors([], "m1") == {}


@exercises("keep_related_terms", "related_terms", "related_made")
def test_related_terms_are_kept_per_key_and_replaced_whole(store: Any) -> None:
    assert store.related_terms("k", ["f"]) == ([], 0)
    assert store.related_made("k") == ""
    rows = [("f", "g", 0.75), ("f", "h", 0.5), ("e", "g", 0.25)]
    assert store.keep_related_terms("k", rows, 331, T0) == 3
    assert sorted(store.related_terms("k", ["f", "x"])[0]) == [("f", "g", 0.75), ("f", "h", 0.5)]
    assert store.related_terms("k", ["f"])[1] == 331
    assert sorted(store.related_terms("k", None)[0]) == sorted(rows)
    assert store.related_terms("k2", None) == ([], 0)
    made = store.related_made("k")
    assert made and store.related_made("k2") == ""
    store.keep_related_terms("k", [("e", "h", 1.0)], 5, T0 + timedelta(hours=1))
    assert store.related_terms("k", None) == ([("e", "h", 1.0)], 5)
    assert store.related_made("k") not in ("", made)  # relearned: another table


@exercises("save_fetch_state", "fetch_state")
def test_fetch_state_is_replaced(store: Any) -> None:
    assert store.fetch_state("hf") is None
    store.save_fetch_state("hf", "https://example.org/a", '{"etag": "1"}', T0, "ok")
    store.save_fetch_state("hf", "https://example.org/b", '{"etag": "2"}', T0, "error", "boom")
    got = store.fetch_state("hf")
    assert (got.url, got.state) == ("https://example.org/b", '{"etag": "2"}')


@exercises(
    "upsert_subscriber",
    "upsert_subscribers",
    "subscriber",
    "subscriber_by_email",
    "subscribers",
    "subscriber_page",
    "subscribers_by_id",
    "set_subscriber_status",
    "set_paused",
    "remove_profile",
)
def test_subscribers_their_profiles_and_status(store: Any) -> None:
    ada, created = store.upsert_subscriber(
        "ada@example.org", PROFILE, now=T0, timezone="Asia/Tokyo"
    )
    assert created and (ada.id, ada.status, ada.timezone, ada.profiles) == (
        1,
        "pending",
        "Asia/Tokyo",
        (PROFILE,),
    )
    ada, created = store.upsert_subscriber("ada@example.org", None, now=T0, confirmed=True)
    assert not created and ada.status == "confirmed" and ada.confirmed_at == T0
    other = Profile("other", keywords=(Keyword("speech", phrase=False, weight=2.0),), max_items=3)
    pages = list(
        store.upsert_subscribers(
            [
                ImportRow(1, "bob@example.org", PROFILE, send_at="09:30"),
                ImportRow(2, "ada@example.org", other),
                ImportRow(3, "cy@example.org", PROFILE),
            ],
            T0,
            confirmed=True,
        )
    )
    assert [(c.new, c.changed, c.unchanged) for c in pages] == [(2, 1, 0)]
    assert [s.email for s in pages[0].created] == ["bob@example.org", "cy@example.org"]
    assert [p.name for p in store.subscriber(1).profiles] == ["default", "other"]
    bob = store.subscriber_by_email("bob@example.org")
    assert (bob.id, bob.send_at, bob.status) == (2, "09:30", "confirmed")
    assert store.set_paused(bob.id, True, T0) and not store.set_paused(bob.id, True, T0)
    assert store.set_subscriber_status(3, "unsubscribed", T0)
    assert not store.set_subscriber_status(3, "unsubscribed", T0)
    assert [s.email for s in store.subscribers()] == [
        "ada@example.org",
        "bob@example.org",
        "cy@example.org",
    ]
    assert [s.email for s in store.subscribers(status="paused")] == ["bob@example.org"]
    assert [s.email for s in store.subscribers(status="confirmed")] == ["ada@example.org"]
    assert [s.id for s in store.subscriber_page(after_id=1, limit=1)] == [2]
    assert sorted(store.subscribers_by_id([3, 1, 99])) == [1, 3]
    assert store.remove_profile(1, "other") and not store.remove_profile(1, "other")
    assert store.subscriber(1).profiles == (PROFILE,)


@exercises("due_keys", "due_subscribers", "advance_next_send", "claim_deliveries", "set_paused")
def test_readers_are_due_by_their_next_send_time(store: Any) -> None:
    """Each write that moves a reader's next send time moves it in the index: a new
    reader is due from their send time on the day they confirmed, a claim moves them to
    the next day (a week for weekly readers), pausing, unsubscribing or a reader with no
    profile takes them out, resuming puts them back; a reader whose day went by without
    a digest is moved on to their send time of today."""
    tokyo, _ = store.upsert_subscriber(  # 07:00 in Tokyo is 22:00 UTC the day before
        "tokyo@example.org", PROFILE, now=T0, timezone="Asia/Tokyo", confirmed=True
    )
    early, _ = store.upsert_subscriber(
        "early@example.org", PROFILE, now=T0, send_at="06:00", confirmed=True
    )
    weekly, _ = store.upsert_subscriber(
        "weekly@example.org", PROFILE, now=T0, frequency="weekly", confirmed=True
    )
    store.upsert_subscriber("none@example.org", None, now=T0, confirmed=True)  # no profile
    store.upsert_subscriber("pending@example.org", PROFILE, now=T0)
    at = lambda day, hour: datetime.combine(day, time(hour), UTC).isoformat()  # noqa: E731
    before = DAY - timedelta(1)
    assert store.due_keys(T0) == [
        (at(before, 22), tokyo.id),
        (at(DAY, 6), early.id),
        (at(DAY, 7), weekly.id),
    ]
    assert store.due_keys(T0 - timedelta(minutes=61)) == [(at(before, 22), tokyo.id)]
    page = store.due_keys(T0, limit=1)
    assert store.due_keys(T0, after=page[-1], limit=1) == [(at(DAY, 6), early.id)]
    assert store.due_keys(T0, after=page[-1], upto=(at(DAY, 6), early.id)) == [
        (at(DAY, 6), early.id)
    ]
    got = store.due_subscribers(T0, after=page[-1])
    assert [(k, s.email, s.profiles) for k, s in got] == [
        ((at(DAY, 6), early.id), "early@example.org", (PROFILE,)),
        ((at(DAY, 7), weekly.id), "weekly@example.org", (PROFILE,)),
    ]
    store.claim_deliveries([claim("e", early.id, DAY, ()), claim("w", weekly.id, DAY, ())], T0)
    assert store.due_keys(T0 + timedelta(7)) == [
        (at(before, 22), tokyo.id),
        (at(DAY + timedelta(1), 6), early.id),
        (at(DAY + timedelta(7), 7), weekly.id),
    ]
    assert store.set_paused(early.id, True, T0)
    assert [i for _, i in store.due_keys(T0 + timedelta(7))] == [tokyo.id, weekly.id]
    assert store.set_paused(early.id, False, T0)  # resumed: due the day after their last
    assert (at(DAY + timedelta(1), 6), early.id) in store.due_keys(T0 + timedelta(7))
    store.set_subscriber_status(tokyo.id, "unsubscribed", T0)
    store.upsert_subscriber("early@example.org", None, now=T0, send_at="08:30")
    assert store.due_keys(T0 + timedelta(7)) == [
        (datetime.combine(DAY + timedelta(1), time(8, 30), UTC).isoformat(), early.id),
        (at(DAY + timedelta(7), 7), weekly.id),
    ]
    late, _ = store.upsert_subscriber(  # due at 23:00 yesterday; none was sent
        "late@example.org", PROFILE, now=T0 - timedelta(1), send_at="23:00", confirmed=True
    )
    assert (at(before, 23), late.id) in store.due_keys(T0)
    store.advance_next_send([late.id, early.id], T0)
    assert store.due_keys(T0) == []
    assert (at(DAY, 23), late.id) in store.due_keys(T0 + timedelta(7))


@exercises(
    "claim_deliveries",
    "record_attempts",
    "due_delivery_ids",
    "deliveries_by_id",
    "frozen_items",
    "deliveries",
    "delivery_for",
    "last_delivery",
    "last_digests",
    "recent_deliveries",
    "claimed_since",
    "sent_pairs",
    "sent_paper_ids",
)
def test_deliveries_are_claimed_once_and_remember_what_was_sent(store: Any) -> None:
    store.add_papers([paper(1), paper(2), paper(3)], arrived_at=T0)
    ada, _ = store.upsert_subscriber("ada@example.org", PROFILE, now=T0, confirmed=True)
    bob, _ = store.upsert_subscriber("bob@example.org", PROFILE, now=T0, confirmed=True)
    day2 = DAY + timedelta(40)  # another month: another partition on PostgreSQL
    first = [
        claim("d1", ada.id, DAY, ("2510.00001", "2510.00002")),
        claim("d2", bob.id, DAY, ("2510.00002",)),
        claim("d1-again", ada.id, DAY, ()),  # the same reader and day: the first stands
    ]
    assert store.claim_deliveries(first, T0) == ["d1", "d2"]
    second = [claim("d2", ada.id, day2, ()), claim("d3", ada.id, day2, ("2510.00003",), 3)]
    assert store.claim_deliveries(second, T0) == ["d3"]  # d2 is taken (another day)
    assert store.claim_deliveries(first, T0) == []
    assert store.frozen_items(["d1", "d3", "nope"]) == {"d1": "{}", "d3": "{}"}
    assert store.due_delivery_ids(T0) == ["d1", "d2", "d3"]
    retry_at = T0 + timedelta(hours=1)
    store.record_attempts(
        [Outcome("d1", "sent"), Outcome("d2", "retry", "busy", retry_at)], T0 + timedelta(1)
    )
    assert store.due_delivery_ids(T0) == ["d3"]
    assert store.due_delivery_ids(retry_at) == ["d2", "d3"]
    d1, d2 = store.deliveries_by_id(["d1", "d2", "nope"])
    assert (d1.state, d1.attempts, d1.sent_at, d1.content) == (
        "sent",
        1,
        T0 + timedelta(1),
        '{"c": 1}',
    )
    assert (d2.state, d2.reason, d2.next_attempt_at, d2.sent_at) == (
        "retry",
        "busy",
        retry_at,
        None,
    )
    assert (d1.digest_date, d1.window_start, d1.window_end) == (DAY, T0 - timedelta(1), T0)
    assert [d.id for d in store.deliveries()] == ["d3", "d1", "d2"]
    assert [d.id for d in store.deliveries(state="retry")] == ["d2"]
    assert store.delivery_for(ada.id, DAY).id == "d1"
    assert store.delivery_for(bob.id, day2) is None
    assert store.last_delivery(ada.id).id == "d3"
    assert [d.id for d in store.recent_deliveries(ada.id, limit=1)] == ["d3"]
    last = store.last_digests([ada.id, bob.id, 99])
    assert sorted(last) == [ada.id, bob.id]
    assert (last[ada.id].digest_date, last[ada.id].window_end, last[ada.id].papers_upto) == (
        day2,
        T0,
        3,
    )
    assert store.claimed_since(day2) == {(ada.id, day2)}
    readers, positions = store.sent_pairs(["2510.00002", "2510.00003"], 0)
    assert sorted(zip(readers, positions, strict=True)) == [(ada.id, 0), (ada.id, 1), (bob.id, 0)]
    past_row_2 = store.sent_pairs(["2510.00002", "2510.00003"], 2)  # only d3 considered row 3
    assert (list(past_row_2[0]), list(past_row_2[1])) == ([ada.id], [1])
    assert store.sent_paper_ids(ada.id) == {"2510.00001", "2510.00002", "2510.00003"}


@exercises("claim_deliveries")
def test_a_failed_claim_writes_nothing(store: Any) -> None:
    """All or none: a claim for a reader who does not exist fails the whole batch."""
    ada, _ = store.upsert_subscriber("ada@example.org", PROFILE, now=T0, confirmed=True)
    with pytest.raises(StoreError) as caught:
        store.claim_deliveries([claim("d1", ada.id, DAY, ()), claim("d2", 99, DAY, ())], T0)
    assert "\n" not in str(caught.value) and "rolled back" in str(caught.value)
    assert store.deliveries() == []


@exercises("rate", "rating", "ratings", "unrate", "rated_papers", "keep_paper_terms")
def test_ratings_one_per_reader_and_paper(store: Any) -> None:
    store.add_papers([paper(1), paper(2)], arrived_at=T0)
    ada, _ = store.upsert_subscriber("ada@example.org", PROFILE, now=T0, confirmed=True)
    assert store.rate(ada.id, "2510.00001", 1, T0)
    assert store.rate(ada.id, "2510.00001", -1, T0 + timedelta(1), via="manage")
    assert store.rate(ada.id, "2510.00002", 1, T0)
    assert not store.rate(ada.id, "no-such-paper", 1, T0)
    got = store.rating(ada.id, "2510.00001")
    assert (got.vote, got.via, got.rated_at, got.title) == (
        -1,
        "manage",
        T0 + timedelta(1),
        "Paper number 1",
    )
    assert [r.paper_id for r in store.ratings(ada.id)] == ["2510.00001", "2510.00002"]
    store.keep_paper_terms([("2510.00002", b"\x00terms")], "k1")
    learned = store.rated_papers([ada.id, ada.id + 1], "k1")
    assert list(learned) == [ada.id]  # a reader without ratings has no entry
    got_rows = [(p.id, p.title, vote, blob) for p, vote, blob in learned[ada.id]]
    assert got_rows == [  # newest first; kept terms where the analysis kept them
        ("2510.00001", "Paper number 1", -1, None),
        ("2510.00002", "Paper number 2", 1, b"\x00terms"),
    ]
    assert [p.id for p, _, _ in store.rated_papers([ada.id], "k1", limit=1)[ada.id]] == [
        "2510.00001"
    ]
    assert store.unrate(ada.id, "2510.00001") and not store.unrate(ada.id, "2510.00001")
    assert store.rating(ada.id, "2510.00001") is None


@exercises("acquire_lease", "release_lease")
def test_a_lease_has_one_holder(store: Any) -> None:
    ttl = timedelta(minutes=2)
    assert store.acquire_lease("send", "h1:1:1", T0, ttl) is None
    assert store.acquire_lease("send", "h1:1:1", T0 + timedelta(minutes=1), ttl) is None  # renew
    assert store.acquire_lease("send", "h2:2:2", T0, ttl) == "h1:1:1"
    store.release_lease("send", "h2:2:2")  # not the holder: nothing happens
    assert store.acquire_lease("send", "h2:2:2", T0, ttl) == "h1:1:1"
    store.release_lease("send", "h1:1:1")
    assert store.acquire_lease("send", "h2:2:2", T0, ttl) is None
    store.release_lease("send", "h2:2:2")


@exercises("queue_unsubscribe", "apply_queued_unsubscribes", "subscriber")
def test_a_queued_unsubscribe_lands(store: Any) -> None:
    ada, _ = store.upsert_subscriber("ada@example.org", PROFILE, now=T0, confirmed=True)
    store.queue_unsubscribe(QueuedUnsubscribe(ada.id, "ada@example.org", T0))
    store.apply_queued_unsubscribes()
    assert store.subscriber(ada.id).status == "unsubscribed"
    assert store.apply_queued_unsubscribes() == 0


@exercises("schema_version", "installation_id")
def test_the_base(store: Any, backend: Callable[[], Store]) -> None:
    assert store.schema_version == SCHEMA_VERSION
    made = store.installation_id
    assert len(made) == 32 and int(made, 16) >= 0
    with backend() as again:  # opening it again migrates nothing and keeps the id
        assert (again.schema_version, again.installation_id) == (SCHEMA_VERSION, made)
    assert json.loads(json.dumps(made)) == made


def test_papers_read_together_are_each_rows_own() -> None:
    """`codec.papers_from_cells` (a month of rows, list columns parsed at once) makes
    what `paper_from_cells` makes of each row, and a cell that is not one JSON value
    fails as it does alone."""
    from digest.codec import PAPER_COLUMNS, paper_from_cells, paper_row, papers_from_cells

    from .factories import make_paper

    at = PAPER_COLUMNS.index("authors")
    rows = [list(paper_row(make_paper(f"Paper {i}", "Text."))) for i in range(5)]
    rows[0][at] = json.dumps(["A, B", 'C "D"'])
    rows[1][at] = "null"
    rows[2][at] = None
    rows[3][at] = "[]"
    rows[4][at] = '["x", 3]'
    sources = {rows[0][0]: ("seeds",)}
    alone = [paper_from_cells(r, tuple(sources.get(r[0], ()))) for r in rows]
    assert papers_from_cells(rows, sources) == alone
    assert alone[0].authors == ("A, B", 'C "D"') and alone[4].authors == ("x", "3")
    rows[1][at] = '"a", "b"'  # two values: not a list cell
    with pytest.raises(ValueError):
        papers_from_cells(rows, sources)
