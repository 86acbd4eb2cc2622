"""Driver errors leave the store as one clear StoreError line (after lemon24/reader's
`test_errors_locked`): every public method on a locked database, a corrupt file, a
read-only file, and the wrapping itself (iterators, errors that must pass through)."""

from __future__ import annotations

import inspect
import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FunctionType
from typing import Any

import pytest

from digest.bulk import ImportRow
from digest.errors import StoreError
from digest.model import Claim, Keyword, Outcome, Paper, Profile
from digest.store import Store

T0 = datetime(2025, 10, 16, 7, tzinfo=UTC)
DAY = date(2025, 10, 16)
PAPER = Paper(
    id="2510.00001",
    title="Seeded Paper",
    abstract="An abstract.",
    arxiv_id="2510.00001",
    sources=("seeds",),
    first_seen=T0,
    last_seen=T0,
)
PROFILE = Profile(name="default", keywords=(Keyword("LoRA"),))


def claim(did: str, sid: int, day: date, ids: tuple[str, ...]) -> Claim:
    return Claim(did, sid, day, None, T0, "{}", ids)


SUBSCRIBER_ID = 1  # the first subscriber of a new store
DELIVERY_ID = "delivery-1"
LOCK_TIMEOUT = 0.05  # seconds: the busy timeout of the store under test


def call(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of one entry of CALLS."""
    return args, kwargs


#: Marks a property in CALLS: reading it is the call.
READ = call()

#: Every public method and property of Store, with valid arguments for the seeded store
#: (see `seed`). A new public method must be added here (test_every_public_method_...).
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    # papers
    "add_papers": call([PAPER]),
    "papers": call(since=DAY),
    "papers_between": call(DAY, DAY + timedelta(days=1)),
    "paper_days": call(DAY),
    "arrival_days": call(0, 1),
    "newest_paper_row": call(),
    "row_arrived_by": call(T0),
    "arrivals": call(0, 1),
    "count_papers": call(),
    "paper": call(PAPER.id),
    "paper_terms": call([PAPER.id], "k"),
    "keep_paper_terms": call([(PAPER.id, b"blob")], "k"),
    "papers_lacking_terms": call("k", 0),
    "term_counts": call([PAPER.id], "k"),
    "posting_rows": call([(1, 0)]),
    "backfill_postings": call(),
    "paper_search": call([PAPER.id], "k"),
    "day_index": call("k"),
    "share_day_index": call("k", 0, 1, T0, lambda low, high: b"index"),
    "paper_vectors": call([PAPER.id], "m"),
    "keep_paper_vectors": call([(PAPER.id, b"blob")], "m"),
    "papers_lacking_vectors": call("m", 0),
    "count_paper_vectors": call("m"),
    "keyword_vectors": call(["lora"], "m"),
    "keep_keyword_vectors": call([("lora", b"blob")], "m"),
    "keep_related_terms": call("k", [("f", "g", 0.5)], 3, T0),
    "related_terms": call("k", ["f"]),
    "related_made": call("k"),
    "newest_arrival": call(),
    "fetch_state": call("hf"),
    "save_fetch_state": call("hf", "https://example.org/feed", "{}", T0, "ok"),
    # subscribers
    "upsert_subscriber": call("ada@example.org", PROFILE, now=T0),
    "upsert_subscribers": call([ImportRow(1, "bob@example.org", PROFILE)], T0),
    "set_subscriber_status": call(SUBSCRIBER_ID, "unsubscribed", T0),
    "remove_profile": call(SUBSCRIBER_ID, "default"),
    "subscriber": call(SUBSCRIBER_ID),
    "subscriber_by_email": call("ada@example.org"),
    "subscribers": call(status="confirmed"),
    "subscriber_page": call(after_id=0, limit=10),
    "due_keys": call(T0),
    "due_subscribers": call(T0, limit=10),
    "advance_next_send": call([SUBSCRIBER_ID], T0),
    "subscribers_by_id": call([SUBSCRIBER_ID]),
    # deliveries
    "claim_deliveries": call(
        [claim("delivery-2", SUBSCRIBER_ID, DAY + timedelta(1), (PAPER.id,))], T0
    ),
    "record_attempts": call([Outcome(DELIVERY_ID, "sent")], T0),
    "due_delivery_ids": call(T0),
    "last_digests": call([SUBSCRIBER_ID]),
    "claimed_since": call(DAY),
    "sent_pairs": call([PAPER.id], 0),
    "frozen_items": call(["k"]),
    "deliveries_by_id": call([DELIVERY_ID]),
    "deliveries": call(state="pending"),
    "delivery_for": call(SUBSCRIBER_ID, DAY),
    "last_delivery": call(SUBSCRIBER_ID),
    "sent_paper_ids": call(SUBSCRIBER_ID),
    "set_paused": call(SUBSCRIBER_ID, True, T0),
    "recent_deliveries": call(SUBSCRIBER_ID),
    # ratings
    "rate": call(SUBSCRIBER_ID, PAPER.id, 1, T0),
    "unrate": call(SUBSCRIBER_ID, PAPER.id),
    "ratings": call(SUBSCRIBER_ID),
    "rating": call(SUBSCRIBER_ID, PAPER.id),
    "rated_papers": call([SUBSCRIBER_ID], "k"),
    "acquire_lease": call("send", "other-host:1:1", T0, timedelta(minutes=2)),
    "release_lease": call("send", "this-host:1:1"),
    # the base
    "schema_version": READ,
    "installation_id": READ,
}

#: Public members that need no lock, and why.
NO_LOCK_NEEDED = {
    "close": "closing only releases the connection",
    "queue_unsubscribe": "appends to a file beside the store: what a locked store falls back to",
    "apply_queued_unsubscribes": "writes only when something is queued: see"
    " tests/test_unsubscribe_load.py for a locked store",
}


def public_members(cls: type) -> set[str]:
    """The public methods and properties of `cls`, inherited ones included."""
    return {
        name
        for name in dir(cls)
        if not name.startswith("_")
        and isinstance(inspect.getattr_static(cls, name), FunctionType | property)
    }


def invoke(store: Store, name: str) -> object:
    """Call `name` on `store` with its CALLS arguments, consuming a returned iterator."""
    args, kwargs = CALLS[name]
    if isinstance(inspect.getattr_static(Store, name), property):
        return getattr(store, name)
    result = getattr(store, name)(*args, **kwargs)
    return list(result) if isinstance(result, Iterator) else result


def seed(store: Store) -> None:
    """Rows for every CALLS entry to find: a paper, a subscriber, a delivery, a lease."""
    store.add_papers([PAPER])
    store.upsert_subscriber("ada@example.org", PROFILE, now=T0, confirmed=True)
    store.claim_deliveries([claim(DELIVERY_ID, SUBSCRIBER_ID, DAY, (PAPER.id,))], T0)
    store.save_fetch_state("hf", "https://example.org/feed", "{}", T0, "ok")
    store.acquire_lease("send", "this-host:1:1", T0, timedelta(minutes=2))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "digest.sqlite3"
    with Store(path) as store:
        seed(store)
    return path


@pytest.fixture
def unlocked_store(db_path: Path) -> Iterator[Store]:
    """The seeded store with a short busy timeout, out of WAL mode: WAL lets readers in
    beside an exclusive lock, so without this only writes would meet the lock."""
    with Store(db_path, timeout=LOCK_TIMEOUT) as store:
        store._db.execute("PRAGMA journal_mode=DELETE")
        yield store


def hold_exclusive_lock(path: Path) -> sqlite3.Connection:
    """A second connection (another process, as far as the store can tell) holding the
    database exclusively until it is rolled back."""
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    return locker


def assert_one_line(error: StoreError, path: Path, *fragments: str) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_every_public_method_is_in_the_table() -> None:
    """A public method without a CALLS entry (or one the table names that is gone)
    fails here: give it valid arguments in CALLS."""
    assert public_members(Store) - NO_LOCK_NEEDED.keys() == CALLS.keys()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_call_in_the_table_works_unlocked(unlocked_store: Store, name: str) -> None:
    """The table's arguments are valid: without the lock, each call succeeds."""
    invoke(unlocked_store, name)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_public_method_on_a_locked_database(
    unlocked_store: Store, db_path: Path, name: str
) -> None:
    locker = hold_exclusive_lock(db_path)
    try:
        with pytest.raises(StoreError) as caught:
            invoke(unlocked_store, name)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert_one_line(caught.value, db_path, "database is locked", "try again")
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


def test_opening_a_locked_database_fails_after_the_given_timeout(
    unlocked_store: Store, db_path: Path
) -> None:
    """The store's busy timeout is the one given (not the default 30 s): checked by what
    SQLite reports, not by a stopwatch; a locked open then fails in one line."""
    locker = hold_exclusive_lock(db_path)
    try:
        with pytest.raises(StoreError) as caught:
            Store(db_path, timeout=LOCK_TIMEOUT)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert_one_line(caught.value, db_path, "cannot open the store", "database is locked")
    with Store(db_path, timeout=LOCK_TIMEOUT) as quick:
        busy_ms = quick._db.execute("PRAGMA busy_timeout").fetchone()[0]
    assert busy_ms == int(LOCK_TIMEOUT * 1000)


def test_a_file_of_random_bytes_is_refused_on_open(tmp_path: Path) -> None:
    path = tmp_path / "random.sqlite3"
    path.write_bytes(random.Random(0).randbytes(8192))
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert_one_line(caught.value, path, "cannot open the store", "not a papers-digest store")


def test_a_store_corrupted_after_it_was_made(db_path: Path) -> None:
    """Page 1 intact, the rest garbage: the open (when the schema spills past page 1) or
    else the first read says, in one line, that the file is corrupt."""
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA journal_mode=DELETE")  # everything in the main file, no -wal
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(db_path.read_bytes())
    data[page_size:] = random.Random(0).randbytes(len(data) - page_size)
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as caught, Store(db_path) as store:
        store.papers()
    where = "cannot open the store" if "open" in str(caught.value) else "papers() failed"
    assert_one_line(caught.value, db_path, where, "not a papers-digest store or corrupt")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_a_read_only_store(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{db_path}{suffix}").exists():
            os.chmod(f"{db_path}{suffix}", 0o444)
    os.chmod(db_path.parent, 0o555)  # no new -wal/-shm either
    try:
        with pytest.raises(StoreError) as caught, Store(db_path, timeout=LOCK_TIMEOUT) as store:
            store.add_papers([PAPER])
    finally:
        os.chmod(db_path.parent, 0o755)
    assert_one_line(caught.value, db_path, "check the")


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        Store(tmp_path)
    assert_one_line(caught.value, tmp_path, "cannot open the store", "cannot open the file")


def test_a_closed_store(db_path: Path) -> None:
    store = Store(db_path)
    store.close()
    with pytest.raises(StoreError) as caught:
        store.papers()
    assert_one_line(caught.value, db_path, "papers() failed", "closed")


class Probe(Store):
    """Methods a later author might add: wrapped by StoreBase.__init_subclass__ alone."""

    def rows(self) -> Iterator[str]:
        """A generator function: nothing runs until it is iterated."""
        yield from self._ids()

    def lazy(self) -> Iterator[str]:
        """Not a generator function, but returns a generator."""
        return self._ids()

    def _ids(self) -> Iterator[str]:
        for row in self._db.execute("SELECT id FROM papers"):
            yield row[0]

    def refuse(self) -> None:
        raise StoreError("a store error of our own")

    def misuse(self) -> None:
        raise ValueError("not a driver error")


@pytest.mark.parametrize("name", ["rows", "lazy"])
def test_errors_while_iterating_are_translated(db_path: Path, name: str) -> None:
    with Probe(db_path, timeout=LOCK_TIMEOUT) as probe:
        assert list(getattr(probe, name)()) == [PAPER.id]
        probe._db.execute("PRAGMA journal_mode=DELETE")
        rows = getattr(probe, name)()  # nothing has run yet for a generator
        locker = hold_exclusive_lock(db_path)
        try:
            with pytest.raises(StoreError) as caught:
                list(rows)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
    assert_one_line(caught.value, db_path, f"{name}() failed", "database is locked")


def test_other_errors_pass_through_unchanged(db_path: Path) -> None:
    with Probe(db_path) as probe:
        with pytest.raises(StoreError) as caught:
            probe.refuse()
        assert str(caught.value) == "a store error of our own"
        assert caught.value.__cause__ is None
        with pytest.raises(ValueError, match="not a driver error"):
            probe.misuse()


def test_a_failed_write_is_rolled_back_and_says_so(unlocked_store: Store) -> None:
    """A driver error halfway through a write: nothing lands, and the message says so."""
    claims = [
        claim("delivery-8", SUBSCRIBER_ID, DAY + timedelta(days=2), (PAPER.id,)),
        claim("delivery-9", 999, DAY, ()),  # no subscriber 999: foreign key
    ]
    with pytest.raises(StoreError) as caught:
        unlocked_store.claim_deliveries(claims, T0)
    assert_one_line(caught.value, unlocked_store.path, "write failed and was rolled back")
    assert unlocked_store.deliveries_by_id(["delivery-8", "delivery-9"]) == []


def test_a_commit_that_fails_is_rolled_back(unlocked_store: Store, db_path: Path) -> None:
    """A reader holding the file while a write commits (no WAL): the commit gives up
    after the timeout; the write is rolled back and the store stays usable."""
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM papers").fetchone()  # holds a shared lock
    late = replace(PAPER, id="late", title="Late Paper", arxiv_id=None)
    try:
        with pytest.raises(StoreError) as caught:
            unlocked_store.add_papers([late])
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    assert_one_line(caught.value, db_path, "rolled back", "database is locked")
    assert unlocked_store.count_papers() == 1
    assert unlocked_store.add_papers([late]).new == 1
