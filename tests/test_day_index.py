"""The day's paper index that `digest worker`'s shards share (`digest.dayindex`): the
same digests as the shard's own index, made once, never used when stale, and read back
only as what it wrote.

On the seed store (331 papers, SQLite: the table and its lock are the same `Store`
interface on both backends; the contract test runs them on PostgreSQL too).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from digest import dayindex, rank
from digest.config import Config
from digest.dayindex import build, decode, index_key, shared_index
from digest.frozen import freeze_digest
from digest.model import Paper
from digest.rank import make_profile
from digest.send import Indexer, Window, _plan, stored_index
from digest.store import Store, open_store
from digest.work import shard_readers
from tests.conftest import SEED_ARRIVAL

NOW = SEED_ARRIVAL + timedelta(hours=10)
#: Readers of every kind the planner meets: phrases, weights, exclusions, two profiles.
PROFILES = [
    ("LoRA", '"low-rank adaptation"'),
    ("diffusion^2", "video generation"),
    ("speech", "TTS"),
    ("reinforcement learning", "reward model"),
    ("retrieval", "RAG", "-survey"),
    ("agents", "tool use", "-benchmark"),
    ('"mixture of experts"', "quantization"),
    ("3D", "Gaussian splatting", "NeRF"),
]


def add_readers(store: Store, n: int) -> None:
    for i in range(n):
        typed = PROFILES[i % len(PROFILES)]
        keywords = [k for k in typed if not k.startswith("-")]
        exclude = [k[1:] for k in typed if k.startswith("-")]
        store.upsert_subscriber(
            f"r{i}@example.org",
            make_profile("papers", keywords, exclude),
            now=SEED_ARRIVAL - timedelta(days=2),
            send_at="00:00",
            frequency="weekly" if i % 5 == 4 else "daily",
            confirmed=True,
        )
        if i % 3 == 0:  # a second profile for some
            other = PROFILES[(i + 3) % len(PROFILES)]
            store.upsert_subscriber(
                f"r{i}@example.org",
                make_profile("more", [k for k in other if not k.startswith("-")]),
                now=SEED_ARRIVAL - timedelta(days=2),
            )


def plan(config: Config, store: Store, indexer: Indexer, now: datetime = NOW) -> dict[str, str]:
    """Every due reader's digest (frozen: every item, score, match and snippet) by email."""
    keys = store.due_keys(now, limit=10_000)
    readers = shard_readers(store, now, None, keys[-1])
    out = {}
    for page in _plan(config, store, now, None, (), {}, readers, indexer):
        for p in page.planned:
            out[p.due.subscriber.email] = freeze_digest(p.digest)
    return out


def counting(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many blobs each `paper_terms` call of `store` read."""
    asked: list[int] = []
    real = store.paper_terms

    def paper_terms(ids: Any, key: str) -> dict[str, bytes]:
        asked.append(len(ids))
        return real(ids, key)

    monkeypatch.setattr(store, "paper_terms", paper_terms)
    return asked


def test_shards_rank_on_the_shared_index_exactly_as_on_their_own(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = seeded_store
    add_readers(store, 24)
    rated = store.subscriber_by_email("r0@example.org")
    assert rated is not None
    liked = store.arrivals(0, store.newest_paper_row())[5][1]
    assert store.rate(rated.id, liked.id, 1, NOW - timedelta(hours=1))  # vectors from blobs
    own = plan(seeded_config, store, stored_index)
    asked = counting(store, monkeypatch)
    shared = plan(seeded_config, store, shared_index)  # the first shard: makes it
    assert len(own) == 24 and sum(d.count('"items"') for d in own.values()) > 24
    assert shared == own
    key = index_key(seeded_config.synonyms or None)
    kept = store.day_index(key)
    assert kept is not None and (kept.low, kept.high) == (0, store.newest_paper_row())
    # Made from the blobs; then only the rated reader's vectors read them again.
    window = [p for _, p in store.arrivals(0, kept.high)]
    assert asked == [len(window), len(window)]


def test_a_shard_reads_no_blob_when_no_reader_rated(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = seeded_store
    add_readers(store, 8)
    own = plan(seeded_config, store, stored_index)
    assert plan(seeded_config, store, shared_index) == own  # the first shard makes it
    asked = counting(store, monkeypatch)
    assert plan(seeded_config, store, shared_index) == own  # the next ones load it
    assert asked == []


def test_a_stale_index_is_never_used(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = seeded_store
    add_readers(store, 8)
    plan(seeded_config, store, shared_index)
    key = index_key(seeded_config.synonyms or None)
    first = store.day_index(key)
    assert first is not None
    # Other synonyms, another analysis or layout: another key.
    assert index_key({"lora": ["low-rank adapter"]}) != key
    assert key.startswith(f"day{dayindex.FORMAT}:") and rank.terms_key(None) in key
    # Papers arrived since: made again for the new papers.
    late = Paper(
        id="late-1",
        title="LoRA adapters for speech diffusion",
        abstract="We study low-rank adaptation of diffusion models for speech.",
        sources=("seeds",),
        first_seen=NOW,
        last_seen=NOW,
    )
    store.add_papers([late], arrived_at=NOW + timedelta(hours=1))
    store.keep_paper_terms(rank.encode_terms([late], None), rank.terms_key(None))
    later = NOW + timedelta(days=1)
    own = plan(seeded_config, store, stored_index, later)
    assert plan(seeded_config, store, shared_index, later) == own
    second = store.day_index(key)
    assert second is not None and second.high == first.high + 1
    assert any("late-1" in d for d in own.values())
    # An index that is not one (damaged, another layout) is not read: the shard indexes.
    monkeypatch.setattr(dayindex, "decode", lambda data: None)
    assert plan(seeded_config, store, shared_index, later) == own


def test_a_paper_whose_text_changed_is_not_read_from_the_index(seeded_store: Store) -> None:
    window = [p for _, p in seeded_store.arrivals(0, seeded_store.newest_paper_row())]
    blobs = seeded_store.paper_terms([p.id for p in window], rank.terms_key(None))
    index = decode(build(window, blobs))
    assert index is not None
    wanted = rank.keyword_features(make_profile("p", ["LoRA", "diffusion"]).keywords)
    found = index.terms(window, wanted)
    assert all(t is not None for t in found) and any(t and t.abstract for t in found)
    changed = replace(window[0], abstract=window[0].abstract + " And now LoRA.")
    assert index.terms([changed], wanted) == [None]


def encoded(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"not an index",
        lambda data: encoded(format=np.asarray([dayindex.FORMAT + 1])),  # another layout
        lambda data: encoded(  # an object array: would need pickle to read
            format=np.asarray([dayindex.FORMAT]), ids=np.asarray([{"a": 1}], dtype=object)
        ),
    ],
)
def test_only_what_build_wrote_is_read_back(
    seeded_store: Store, damage: Callable[[bytes], bytes]
) -> None:
    window = [p for _, p in seeded_store.arrivals(0, 20)]
    data = build(window, seeded_store.paper_terms([p.id for p in window], rank.terms_key(None)))
    assert decode(data) is not None
    assert decode(damage(data)) is None


def test_the_index_of_no_paper_holds_none(seeded_store: Store) -> None:
    index = decode(build([], {}))
    assert index is not None and index.counts == {}
    paper = seeded_store.arrivals(0, 1)[0][1]
    assert index.terms([paper], {"lora"}) == [None]


def test_a_window_the_index_does_not_cover_is_not_shared(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    papers = [p for _, p in seeded_store.arrivals(0, 50)]
    window = Window(papers, 0, 50)
    wanted = rank.keyword_features(make_profile("p", ["LoRA"]).keywords)
    monkeypatch.setattr(dayindex, "MAX_BYTES", 10)  # too big to share
    got = shared_index(seeded_config, seeded_store, NOW, window, wanted, None)
    assert seeded_store.day_index(index_key(None)) is None
    assert (
        got.index.vocab
        == stored_index(seeded_config, seeded_store, NOW, window, wanted, None).index.vocab
    )


def test_the_stored_index_covers_what_it_says() -> None:
    from digest.store.day_index import KeptDayIndex

    kept = KeptDayIndex(10, 20, b"")
    assert kept.covers(10, 20) and kept.covers(15, 20) and not kept.covers(9, 20)
    assert not kept.covers(10, 21)


def test_shards_asking_together_on_postgresql_wait_for_one_build(pg_cluster: Any) -> None:
    """The second of two connections asking for the same index waits on the key's lock
    while the first builds, then takes the first's: built once."""
    url = pg_cluster.create_database("day_index_race")
    building, release = threading.Event(), threading.Event()
    built: list[tuple[int, int]] = []
    got: dict[str, bytes] = {}

    def build(low: int, high: int) -> bytes:
        built.append((low, high))
        building.set()
        assert release.wait(30)
        return b"the index"

    def ask(name: str, low: int) -> None:
        with open_store(url) as store:
            kept = store.share_day_index("k", low, 20, NOW, build)
            assert kept is not None
            got[name] = kept.data

    first = threading.Thread(target=ask, args=("first", 0))
    first.start()
    assert building.wait(30)
    second = threading.Thread(target=ask, args=("second", 5))
    second.start()
    with open_store(url) as watcher:  # until the second waits for the lock
        deadline = time.monotonic() + 30
        while not watcher._db.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone():
            assert time.monotonic() < deadline, "the second never waited for the lock"
    release.set()
    first.join(30)
    second.join(30)
    assert built == [(0, 20)] and got == {"first": b"the index", "second": b"the index"}
