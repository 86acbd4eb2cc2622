"""Kept terms: ingest analyses a paper once, ranking reads what it kept and ranks the same.

A kept blob may only save time: the index built from blobs equals the index built by
analysing the texts, and a blob that is stale (the text changed, the analysis changed)
or damaged is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from digest.config import Config
from digest.ingest import analyse_recent
from digest.rank import keyword_features, make_profile, prepare, rank_prepared, terms_key
from digest.rank.analyzer import analyzer_for
from digest.rank.terms import (
    PaperTerms,
    WantedFeatures,
    analyze,
    decode,
    decode_wanted,
    encode,
    encode_json,
    terms_for,
)
from digest.store import Store

from .conftest import SEED_ARRIVAL
from .factories import make_paper

PROFILES = [
    make_profile("peft", ("LoRA", "parameter-efficient fine-tuning")),
    make_profile("speech", ('"text to speech"', "ASR"), ("survey",)),
    make_profile("video", ("video diffusion", "world model")),
]


def test_ingest_keeps_every_new_papers_terms(seeded_config: Config, seeded_store: Store) -> None:
    key = terms_key(seeded_config.synonyms or None)
    papers = seeded_store.papers()
    kept = seeded_store.paper_terms([p.id for p in papers], key)
    assert len(kept) == len(papers) == 331
    assert seeded_store.papers_lacking_terms(key, 0) == []
    assert seeded_store.paper_terms([p.id for p in papers], "another analysis") == {}


def kept_all(paper, blob: bytes, synonyms=None) -> PaperTerms | None:
    """Everything `blob` holds of the features `paper`'s text has now (a packed blob
    spells no feature, so it is asked for those: all of them, in their order)."""
    features = analyze(paper, analyzer_for(synonyms))
    return decode_wanted(paper, blob, WantedFeatures.of({*features.title, *features.abstract}))


def not_analysed(*args: object) -> PaperTerms:
    raise AssertionError("a kept blob should have been read")


def test_ranking_from_kept_terms_equals_ranking_from_the_texts(
    seeded_config: Config, seeded_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    papers = seeded_store.papers()
    synonyms = seeded_config.synonyms or None
    blobs = seeded_store.paper_terms([p.id for p in papers], terms_key(synonyms))
    now = SEED_ARRIVAL + timedelta(hours=10)
    keywords = [k for p in PROFILES for k in (*p.keywords, *p.exclude)]
    wanted = keyword_features(keywords, seeded_config.ranking, synonyms)
    fresh = prepare(papers, now, seeded_config.ranking, synonyms, wanted=wanted)
    with monkeypatch.context() as patched:  # every paper's terms come from its blob
        patched.setattr("digest.rank.terms.analyze", not_analysed)
        kept = prepare(papers, now, seeded_config.ranking, synonyms, blobs, wanted)
    assert fresh.index.vocab == kept.index.vocab
    for name in ("sat", "in_title", "in_abstract"):
        a, b = getattr(fresh.index, name), getattr(kept.index, name)
        assert (a != b).nnz == 0, name
    assert np.array_equal(fresh.index.idf, kept.index.idf)
    got = rank_prepared(kept, PROFILES)
    assert got == rank_prepared(fresh, PROFILES)
    assert all(r.items for r in got)  # the comparison is about real digests


def test_a_blob_of_another_text_or_a_damaged_one_is_not_used() -> None:
    analyzer = analyzer_for(None)
    paper = make_paper("LoRA adapters for speech", "We adapt speech models with LoRA.")
    blob = encode(paper, analyze(paper, analyzer))
    old = encode_json(paper, analyze(paper, analyzer))  # the layout of older stores
    assert kept_all(paper, blob) == decode(paper, old) == analyze(paper, analyzer)
    enriched = replace(paper, abstract=paper.abstract + " Text to speech, too.")
    assert kept_all(enriched, blob) is None and decode(enriched, old) is None
    assert kept_all(paper, blob[:-8]) is None and decode(paper, old[:-3]) is None
    assert kept_all(paper, b"not zlib") is None
    # terms_for falls back to analysing: the result is the enriched text's terms
    (got,) = terms_for([enriched], analyzer, {paper.id: blob})
    assert got == analyze(enriched, analyzer)
    assert "=text" in got.abstract


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "empty.sqlite3") as store:
        yield store


def test_a_paper_whose_text_grows_is_analysed_again(seeded_config: Config, empty: Store) -> None:
    store = empty
    synonyms = seeded_config.synonyms or None
    key = terms_key(synonyms)
    short = make_paper("Speech tokens", "Short.", seen=SEED_ARRIVAL)
    store.add_papers([short], arrived_at=SEED_ARRIVAL)
    assert analyse_recent(seeded_config, store, SEED_ARRIVAL) == 1
    assert analyse_recent(seeded_config, store, SEED_ARRIVAL) == 0  # kept: nothing to do
    longer = replace(short, abstract="A much longer abstract about text to speech.")
    store.add_papers([longer], arrived_at=SEED_ARRIVAL + timedelta(hours=1))
    assert store.paper_terms([short.id], key) == {}  # the old blob went with the old text
    assert analyse_recent(seeded_config, store, SEED_ARRIVAL + timedelta(hours=1)) == 1
    (stored,) = store.papers()
    blob = store.paper_terms([short.id], key)[short.id]
    assert kept_all(stored, blob, synonyms) == analyze(stored, analyzer_for(synonyms))


def test_only_the_recent_window_is_analysed_at_ingest(seeded_config: Config, empty: Store) -> None:
    """After the analysis changes, ingest re-analyses what digests rank (the last 8 days),
    not the whole history; older papers are analysed when something ranks them."""
    store = empty
    old = make_paper("An old paper", "Old text.", seen=SEED_ARRIVAL - timedelta(days=30))
    new = make_paper("A new paper", "New text.", seen=SEED_ARRIVAL)
    store.add_papers([old], arrived_at=SEED_ARRIVAL - timedelta(days=30))
    store.add_papers([new], arrived_at=SEED_ARRIVAL)
    assert analyse_recent(seeded_config, store, SEED_ARRIVAL) == 1
    key = terms_key(seeded_config.synonyms or None)
    assert set(store.paper_terms([old.id, new.id], key)) == {new.id}


def test_an_index_of_the_wanted_features_ranks_the_same(
    seeded_config: Config, seeded_store: Store
) -> None:
    """`prepare(wanted=keyword_features(...))` holds only the profiles' features and gives
    the same digests as the whole index."""
    papers = seeded_store.papers()
    synonyms = seeded_config.synonyms or None
    now = SEED_ARRIVAL + timedelta(hours=10)
    keywords = [k for p in PROFILES for k in (*p.keywords, *p.exclude)]
    wanted = keyword_features(keywords, seeded_config.ranking, synonyms)
    whole = prepare(papers, now, seeded_config.ranking, synonyms)
    small = prepare(papers, now, seeded_config.ranking, synonyms, wanted=wanted)
    assert set(small.index.vocab) <= wanted and len(small.index.vocab) < len(whole.index.vocab) / 10
    assert rank_prepared(small, PROFILES) == rank_prepared(whole, PROFILES)


def test_pages_ranked_on_one_index_share_its_snippets_and_get_the_same_items(
    seeded_config: Config, seeded_store: Store
) -> None:
    """An index built for known features remembers snippets from page to page of readers
    (`Prepared.memo`); each page's items are what ranking it alone gives."""
    papers = seeded_store.papers()
    synonyms = seeded_config.synonyms or None
    now = SEED_ARRIVAL + timedelta(hours=10)
    keywords = [k for p in PROFILES for k in (*p.keywords, *p.exclude)]
    wanted = keyword_features(keywords, seeded_config.ranking, synonyms)
    shared = prepare(papers, now, seeded_config.ranking, synonyms, wanted=wanted)
    # The whole index keeps no memo (`memo is None`): each profile ranked on it is ranked
    # alone, as on an index of its own, without analysing the texts once per profile.
    whole = prepare(papers, now, seeded_config.ranking, synonyms)
    assert whole.memo is None
    alone = [rank_prepared(whole, [p]) for p in PROFILES]
    assert shared.memo is not None
    pages = [rank_prepared(shared, [p]) for p in (*PROFILES, *PROFILES)]
    assert pages == alone + alone
    assert shared.memo.shown and shared.memo.maps  # the second round read them back
