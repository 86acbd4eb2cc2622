"""The search rows ingest keeps (`rank.searchrows`, the `paper_search` table) give the
archive's search index exactly the hashes the kept blobs and the analysed texts give it
(the top 40 bits: all the index reads), follow their blobs, are backfilled after the
upgrade to them, and are never used for a paper whose text changed since."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from digest.model import Paper
from digest.rank import terms_key
from digest.rank.analyzer import analyzer_for
from digest.rank.find import search_hashes_joined
from digest.rank.searchrows import BITS, joined_hashes, rows_of_blobs
from digest.rank.terms import analyze, encode_json, encode_terms
from digest.store import Store

KEY = terms_key(None)


def top_bits(hashes: np.ndarray) -> np.ndarray:
    return (hashes >> np.uint64(64 - BITS)) << np.uint64(64 - BITS)


def split(hashes: np.ndarray, sizes: np.ndarray) -> list[list[int]]:
    return [a.tolist() for a in np.split(hashes, np.cumsum(sizes)[:-1])] if len(sizes) else []


def as_sets(hashes: np.ndarray, sizes: np.ndarray) -> list[set[int]]:
    """Each paper's hashes as the index takes them: a set (a blob lists a feature of the
    title and of the abstract twice, an analysis once)."""
    return [set(a) for a in split(hashes, sizes)]


def stored(store: Store) -> tuple[list[Paper], list[str], dict[str, bytes]]:
    """The seed papers, their ids and their search rows."""
    papers = store.papers()
    ids = [p.id for p in papers]
    return papers, ids, store.paper_search(ids, KEY)


def test_ingest_keeps_a_row_for_every_paper_that_gives_the_blobs_hashes(
    seeded_store: Store,
) -> None:
    papers, ids, rows = stored(seeded_store)
    assert set(rows) == set(ids)
    blobs = seeded_store.paper_terms(ids, KEY)
    analyzer = analyzer_for(None)
    want, want_sizes = search_hashes_joined(papers, analyzer, blobs)
    analysed, analysed_sizes = search_hashes_joined(papers, analyzer, None)
    got, got_sizes = joined_hashes(papers, rows, analyzer)
    assert got.dtype == np.uint64
    assert split(got, got_sizes) == split(top_bits(want), want_sizes)
    assert as_sets(got, got_sizes) == as_sets(top_bits(analysed), analysed_sizes)
    assert rows_of_blobs(sorted(blobs.items())) == sorted(rows.items())


def test_a_changed_text_or_a_missing_row_is_read_from_the_blob_or_the_text(
    seeded_store: Store,
) -> None:
    papers = seeded_store.papers()[:12]
    ids = [p.id for p in papers]
    rows = seeded_store.paper_search(ids, KEY)
    blobs = seeded_store.paper_terms(ids, KEY)
    changed = [
        replace(p, title=p.title + " with quantum zebrafish") if k % 3 == 0 else p
        for k, p in enumerate(papers)
    ]
    kept = {pid: row for k, (pid, row) in enumerate(rows.items()) if k % 4 != 1}
    kept.update({pid: blobs[pid] for pid in ids if pid not in kept})
    analyzer = analyzer_for(None)
    got, got_sizes = joined_hashes(changed, kept, analyzer, kept)
    want, want_sizes = search_hashes_joined(changed, analyzer, None)
    assert as_sets(got, got_sizes) == as_sets(top_bits(want), want_sizes)
    assert as_sets(got, got_sizes) != as_sets(*joined_hashes(papers, kept, analyzer, kept))


def test_rows_go_with_their_blobs_and_are_backfilled_after_the_upgrade(
    seeded_store: Store,
) -> None:
    papers, ids, before = stored(seeded_store)
    db = seeded_store._sqlite  # as a store upgraded to schema 19 is: no row yet
    db.execute("DELETE FROM paper_search")
    db.execute("UPDATE postings_state SET search_from = 0")
    assert seeded_store.paper_search(ids, KEY) == {}
    while seeded_store.backfill_postings(papers=50):
        pass
    assert seeded_store.paper_search(ids, KEY) == before
    assert seeded_store.backfill_postings() == 0
    # A blob kept again (here in the JSON layout, which makes no row) replaces the row.
    first = papers[0]
    terms = dict(encode_terms([first], None))
    assert terms
    json_blob = encode_json(first, analyze(first, analyzer_for(None)))
    seeded_store.keep_paper_terms([(first.id, json_blob)], KEY)
    assert first.id not in seeded_store.paper_search(ids, KEY)
    seeded_store.keep_paper_terms(terms.items(), KEY)
    assert seeded_store.paper_search([first.id], KEY) == {first.id: before[first.id]}
    # A blob deleted (the paper's text changed) takes its row along.
    db.execute("DELETE FROM paper_terms WHERE paper_id = ?", (first.id,))
    assert first.id not in seeded_store.paper_search(ids, KEY)
