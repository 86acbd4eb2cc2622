"""Kept postings: ranking a day from the postings of its profiles' features gives the same
index, picks and scores as ranking it from every paper's kept blob, and a posting that
is no longer true (the paper kept again, its text changed) is never used.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from digest.config import Config
from digest.ingest import analyse_recent
from digest.model import Paper, Profile
from digest.rank import keyword_features, make_profile, prepare, rank_prepared, terms_key
from digest.rank import postings as kept_postings
from digest.rank.analyzer import analyzer_for
from digest.rank.terms import analyze, encode
from digest.store import Store
from digest.window import KeptTermsRanker

from .conftest import FIXTURES, SEED_ARRIVAL
from .factories import make_paper

PROFILES = [
    make_profile("peft", ("LoRA", "parameter-efficient fine-tuning", "quantization")),
    make_profile("speech", ('"text to speech"', "ASR", "speech"), ("survey",)),
    make_profile("video", ("video diffusion", "world model", '"video generation"')),
    make_profile("agents", ("LLM agents", "tool use", "reinforcement learning")),
]
NOW = SEED_ARRIVAL + timedelta(hours=10)


def wanted_of(config: Config, profiles: list[Profile]) -> set[str]:
    keywords = [k for p in profiles for k in (*p.keywords, *p.exclude)]
    return keyword_features(keywords, config.ranking, config.synonyms or None)


def by_postings(store: Store, config: Config, papers: list[Paper]) -> list:
    """Each paper's narrowed terms as the postings give them."""
    synonyms = config.synonyms or None
    counts = store.term_counts([p.id for p in papers], terms_key(synonyms))
    return kept_postings.wanted_terms(
        papers, counts, store.posting_rows, wanted_of(config, PROFILES)
    )


def same_rankings(store: Store, config: Config, papers: list[Paper]) -> list:
    """Rank `papers` from the blobs and from the postings; assert the two indexes and
    rankings are equal; the postings' ranking."""
    synonyms = config.synonyms or None
    wanted = wanted_of(config, PROFILES)
    blobs = store.paper_terms([p.id for p in papers], terms_key(synonyms))
    from_blobs = prepare(papers, NOW, config.ranking, synonyms, blobs, wanted)
    kept = by_postings(store, config, papers)
    from_postings = prepare(papers, NOW, config.ranking, synonyms, {}, wanted, kept=kept)
    assert from_blobs.index.vocab == from_postings.index.vocab
    for name in ("sat", "in_title", "in_abstract"):
        a, b = getattr(from_blobs.index, name), getattr(from_postings.index, name)
        assert (a != b).nnz == 0 and a.dtype == b.dtype, name
    assert np.array_equal(from_blobs.index.idf, from_postings.index.idf)
    got = rank_prepared(from_postings, PROFILES)
    assert got == rank_prepared(from_blobs, PROFILES)
    return got


def test_ranking_a_day_from_postings_equals_ranking_it_from_the_blobs(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    papers = seeded_store.papers()
    assert all(kept is not None for kept in by_postings(seeded_store, seeded_config, papers))
    got = same_rankings(seeded_store, seeded_config, papers)
    assert all(r.items for r in got) and sum(len(r.items) for r in got) >= 30
    # The archive's ranker reads postings only: no blob, no analysis.
    monkeypatch.setattr("digest.rank.terms.analyze", lambda *a: pytest.fail("analysed"))
    monkeypatch.setattr(Store, "paper_terms", lambda *a: pytest.fail("read a blob"))
    ranker = KeptTermsRanker(seeded_config.store_path)
    items = ranker(papers, PROFILES, NOW, seeded_config.ranking, seeded_config.synonyms or None)
    assert items == [r.items for r in got]


def test_the_sends_index_reads_postings_and_ranks_as_the_blobs_do(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`send.stored_index` (the daily send's index) reads the postings of its readers'
    features and no blob, and ranks as an index made from every paper's blob."""
    from digest.send import Window, stored_index

    store, config = seeded_store, seeded_config
    rows = store.arrivals(0, store.newest_paper_row())
    window = Window([p for _, p in rows], 0, store.newest_paper_row())
    synonyms = config.synonyms or None
    wanted = wanted_of(config, PROFILES)
    blobs = store.paper_terms([p.id for p in window.papers], terms_key(synonyms))
    from_blobs = prepare(window.papers, NOW, config.ranking, synonyms, blobs, wanted)
    with monkeypatch.context() as patched:
        patched.setattr(Store, "paper_terms", lambda *a: pytest.fail("read a blob"))
        prepared = stored_index(config, store, NOW, window, wanted, None)
    assert rank_prepared(prepared, PROFILES) == rank_prepared(from_blobs, PROFILES)


def test_papers_in_many_blocks_and_papers_kept_again_rank_the_same(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small blocks (so a day spans many, with different bucket bits), some papers kept
    again (their old postings die, an emptied block goes), one whose text changed (its
    counts are stale: its blob or its text stands for it)."""
    store, synonyms = seeded_store, seeded_config.synonyms or None
    key, analyzer = terms_key(synonyms), analyzer_for(synonyms)
    papers = store.papers()
    monkeypatch.setattr(kept_postings, "BLOCK_PAPERS", 40)
    blobs = store.paper_terms([p.id for p in papers], key)
    store.keep_paper_terms([(p.id, blobs[p.id]) for p in papers], key)
    again = papers[::7]
    store.keep_paper_terms([(p.id, blobs[p.id]) for p in again], key)
    blocks = {c.block for c in store.term_counts([p.id for p in papers], key).values()}
    assert len(blocks) == 9 + 2  # 331 papers in blocks of 40, then 48 papers again
    assert len({c.bits for c in store.term_counts([p.id for p in papers], key).values()}) > 1
    grown = replace(papers[3], abstract=papers[3].abstract + " Text to speech with LoRA.")
    papers[3] = grown  # as if the store had it so: its counts (and blob) are of the old text
    kept = by_postings(store, seeded_config, papers)
    assert kept[3] is None and sum(k is None for k in kept) == 1
    assert "=text" in analyze(grown, analyzer).abstract  # the stale postings lack it
    same_rankings(store, seeded_config, papers)


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "empty.sqlite3") as store:
        yield store


def test_ingest_keeps_postings_and_a_changed_text_gets_new_ones(
    seeded_config: Config, empty: Store
) -> None:
    store = empty
    key = terms_key(seeded_config.synonyms or None)
    short = make_paper("Speech tokens", "Short.", seen=SEED_ARRIVAL)
    store.add_papers([short], arrived_at=SEED_ARRIVAL)
    assert analyse_recent(seeded_config, store, SEED_ARRIVAL) == 1
    first = store.term_counts([short.id], key)[short.id]
    longer = replace(short, abstract="A much longer abstract about text to speech.")
    store.add_papers([longer], arrived_at=SEED_ARRIVAL + timedelta(hours=1))
    assert store.term_counts([short.id], key) == {}  # gone with the old text, as its blob
    assert analyse_recent(seeded_config, store, SEED_ARRIVAL + timedelta(hours=1)) == 1
    second = store.term_counts([short.id], key)[short.id]
    assert second.block != first.block and second.abstract_words > first.abstract_words
    (stored,) = store.papers()
    (terms,) = by_postings(store, seeded_config, [stored])
    assert terms is not None and "speech" in terms.abstract
    # the first block held only the short text: it went with it
    assert store.posting_rows([(first.block, b) for b in range(1 << first.bits)]) == {}


def test_an_upgraded_store_backfills_the_postings_of_its_kept_terms(tmp_path: Path) -> None:
    """A version 13 store with kept blobs: upgraded, it has no postings until
    `backfill_postings` makes them (ingest calls it), then the same as a keep would."""
    path = tmp_path / "v13.sqlite3"
    shutil.copy(FIXTURES / "store" / "v13.sqlite3", path)
    with sqlite3.connect(path) as db:
        title, abstract = db.execute(
            "SELECT title, abstract FROM papers WHERE id = '2510.12345'"
        ).fetchone()
        paper = make_paper(title, abstract, id="2510.12345")
        blob = encode(paper, analyze(paper, analyzer_for(None)))
        db.execute(
            "UPDATE paper_terms SET key = 'k', data = ? WHERE paper_id = ?", (blob, paper.id)
        )
    with Store(path) as store:
        assert store.term_counts([paper.id], "k") == {}
        assert store.backfill_postings(papers=1) == 1  # a whole batch: there may be more
        assert store.backfill_postings(papers=1) == 0  # the last batch was short: done
        assert store.backfill_postings() == 0
        counts = store.term_counts([paper.id], "k")
        (block,) = kept_postings.make_blocks([(paper.id, blob)])
        assert counts[paper.id].bits == block.bits and counts[paper.id].text == block.papers[0][2]
        cells = [(counts[paper.id].block, bucket) for bucket, _ in block.rows]
        assert list(store.posting_rows(cells).values()) == [row for _, row in block.rows]
