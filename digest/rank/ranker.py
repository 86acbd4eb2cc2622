"""`rank`: the pure ranking function, on top of `score` (choose) and `explain` (why).

    rank(papers, profiles, now, settings, synonyms, exclude_ids) -> items per profile

It only processes data (like reader's `Decider`): no I/O, no clock, no store. The send
planner passes each reader's sent-ledger as `exclude_ids`, so a reader never gets a paper
twice and still gets a full digest, without over-fetching and trimming.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from digest.model import DigestItem, Keyword, Paper, Profile
from digest.rank.analyzer import Analyzer, analyzer_for
from digest.rank.dense import DenseDay, fuse, keyword_meaning
from digest.rank.explain import ExplainMemo, explain
from digest.rank.index import PaperIndex, build_index
from digest.rank.learn import Rated, VectorMemo, augment
from digest.rank.query import compile_keyword
from digest.rank.related import RelatedTerms
from digest.rank.score import (
    Compiled,
    Sense,
    compile_profiles,
    keyword_scores,
    paper_priors,
    related_evidence,
    related_scores,
    sense_of,
    specificity,
    with_related,
)
from digest.rank.select import select
from digest.rank.settings import RankSettings
from digest.rank.terms import PaperTerms, terms_for, terms_kept, terms_wanted

DEFAULT_SETTINGS = RankSettings()


@dataclass(frozen=True, slots=True)
class Prepared:
    """The papers' side of a ranking, built once and shared by every batch of profiles:
    the index, the popularity/recency priors and the analyzer."""

    papers: Sequence[Paper]
    index: PaperIndex
    prior: np.ndarray
    analyzer: Analyzer
    settings: RankSettings
    column: dict[str, int]  #: paper id -> its position in `papers`
    #: Snippet spans and snippets found so far, shared by the pages ranked on this index
    #: (only when it was built for known features: `prepare(wanted=...)`).
    memo: ExplainMemo | None = None
    #: The papers' kept terms, and their tf-idf vectors once a rated profile needs them
    #: (`learn`: readers without ratings never build them).
    vectors: VectorMemo | None = None
    #: The semantic layer's paper vectors, in `papers` order (None: lexical only).
    dense: DenseDay | None = None
    #: The stored papers' related terms (`rank.related`; None: keywords' own words only).
    related: RelatedTerms | None = None


def prepare(
    papers: Sequence[Paper],
    now: datetime,
    settings: RankSettings = DEFAULT_SETTINGS,
    synonyms: Mapping[str, Sequence[str]] | None = None,
    blobs: Mapping[str, bytes] | None = None,
    wanted: Collection[str] | None = None,
    dense: DenseDay | None = None,
    kept: Sequence[PaperTerms | None] | None = None,
    related: RelatedTerms | None = None,
) -> Prepared:
    """Index `papers` for ranking at `now` (pure); `rank_prepared` scores profiles on it.

    `blobs[paper id]`: the paper's terms as ingest kept them (`terms.encode`, under
    `terms.terms_key(synonyms)`); a paper without a valid one is analysed here.
    `wanted`: `keyword_features` of every profile that will be ranked on this index (None:
    any profile may be); the index then holds those features only.
    `dense`: the papers' vectors for the semantic layer (`rank.dense`), row j for
    `papers[j]`; None ranks by the words alone.
    `kept[j]`: `papers[j]`'s terms of the `wanted` features as its kept postings give
    them (`rank.postings.wanted_terms`), None where it has none (then its blob is read).
    `related`: the stored papers' related terms (`rank.related`); the profiles ranked on
    this index then also match papers that say their keywords in other words (pass the
    same table to `keyword_features` for `wanted`).
    """
    analyzer = analyzer_for(synonyms)
    if related and settings.uses_related and wanted is not None and kept is None:
        wanted = set(wanted) | related.expand(wanted)  # their related terms are looked up
    # An index of known features decodes only those of each kept blob.
    if wanted is None:
        terms = terms_for(papers, analyzer, blobs)
    elif kept is not None:
        terms = terms_kept(papers, analyzer, kept, blobs, wanted)
    else:
        terms = terms_wanted(papers, analyzer, blobs, wanted)
    index = build_index(papers, analyzer, settings, terms, wanted)
    pop, rec = paper_priors(papers, now, settings)
    pw, rw = settings.popularity_weight, settings.recency_weight
    prior = (1.0 - pw - rw + pw * pop + rw * rec).astype(np.float32)
    column = {p.id: j for j, p in enumerate(papers)}
    memo = ExplainMemo(frozenset(wanted)) if wanted is not None else None
    vectors = VectorMemo(blobs)
    return Prepared(papers, index, prior, analyzer, settings, column, memo, vectors, dense, related)


def keyword_features(
    keywords: Iterable[Keyword],
    settings: RankSettings = DEFAULT_SETTINGS,
    synonyms: Mapping[str, Sequence[str]] | None = None,
    related: RelatedTerms | None = None,
) -> set[str]:
    """Every index feature that ranking profiles with these keywords (wanted or excluded)
    looks up: what `prepare(wanted=...)` must keep (with `related`, their related terms
    too)."""
    analyzer = analyzer_for(synonyms)
    bridged = related is not None and bool(related) and settings.uses_related
    out: set[str] = set()
    for text, phrase in {(kw.text, kw.phrase) for kw in keywords}:
        plan = compile_keyword(Keyword(text, phrase), analyzer, settings.exact_share)
        if plan is not None and bridged:
            assert related is not None
            plan = with_related(plan, related, settings)
        if plan is not None:
            out |= plan.index_features()
    return out


@dataclass(frozen=True, slots=True)
class Evidence:
    """Each keyword plan's score in each paper (plans x papers, sparse), by source."""

    #: s(k, p) from the words (`score.keyword_scores`), or from related terms where
    #: those give more (`score.related_scores`)
    lexical: sp.csr_matrix
    phrase: sp.csr_matrix  #: its phrase part (what exclusions veto on)
    meaning: sp.csr_matrix | None  #: from the semantic layer (`rank.dense`); None: off
    fused: sp.csr_matrix  #: what the ranker selects on: `dense.fuse` of the two
    #: 1 where the lexical evidence came from related terms alone (the keyword's own
    #: words give none); None: no related terms
    related: sp.csr_matrix | None = None
    #: what `select` weighs partial matches of multi-word keywords by (None: sense off)
    sense: Sense | None = None


def keyword_evidence(prepared: Prepared, compiled: Compiled) -> Evidence:
    """The keywords' evidence on the prepared papers: the words', and, when the semantic
    layer is on, meaning's, fused (`rank.dense`). The one place the two meet, for `rank`
    and for `rank --explain`."""
    settings = prepared.settings
    lexical, phrase = keyword_scores(compiled.plans, prepared.index, settings)
    words = lexical
    raw = related_evidence(compiled.plans, prepared.index)
    bridged = related_scores(raw, settings) if raw is not None else None
    alone = None
    if bridged is not None and bridged.nnz:
        alone = bridged - bridged.multiply(lexical > 0)  # where the words give nothing
        alone.eliminate_zeros()
        lexical = lexical.maximum(bridged).tocsr()
        alone.data[:] = 1.0
    day = prepared.dense
    meaning = None
    fused = lexical
    if day is not None and settings.dense_credit > 0 and compiled.texts is not None:
        texts = [
            t if plan is not None else None
            for t, plan in zip(compiled.texts, compiled.plans, strict=True)
        ]
        meaning = keyword_meaning(day, texts, settings.dense_z, settings.dense_credit)
        if meaning.nnz:  # else nothing stands out today: exactly the lexical ranking
            fused = fuse(lexical, meaning)
    sense = None
    if settings.sense_floor < 1:
        specific = specificity(compiled.plans, prepared.index, phrase)
        sense = sense_of(words, phrase, raw, fused, settings, specific)
    return Evidence(lexical, phrase, meaning, fused, alone, sense)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One profile's result: the items it keeps, and how many papers matched in all."""

    items: tuple[DigestItem, ...]
    matched: int  #: papers that passed everything but the max_items cut (>= len(items))


def rank_prepared(
    prepared: Prepared,
    profiles: Sequence[Profile],
    exclude_ids: Sequence[Collection[str]] | None = None,
    start: Sequence[int] | None = None,
    ratings: Sequence[Sequence[Rated]] | None = None,
) -> list[Ranked]:
    """`rank` on papers indexed once: readers whose windows differ share one index.

    `start[i]`: profile i considers only `papers[start[i]:]` (papers in arrival order,
    a reader's window is where their new papers begin); `exclude_ids[i]`: paper ids it
    must not get (what its reader was sent before); `ratings[i]`: the papers its reader
    rated for it (`learn`): they reorder and admit papers, and never come back.
    """
    papers, settings, analyzer = prepared.papers, prepared.settings, prepared.analyzer
    if not profiles:
        return []
    if not papers:
        return [Ranked((), 0) for _ in profiles]
    for name, given in (("exclude_ids", exclude_ids), ("start", start), ("ratings", ratings)):
        if given is not None and len(given) != len(profiles):
            raise ValueError(f"{name} needs one entry per profile")
    compiled = compile_profiles(profiles, analyzer, settings, prepared.related)
    evidence = keyword_evidence(prepared, compiled)
    scores, vetoes = evidence.fused, evidence.phrase.copy()
    vetoes.data[:] = 1.0
    learned = augment(prepared, compiled, scores, vetoes, ratings) if ratings else None
    if learned is not None:
        compiled, scores, vetoes = learned.compiled, learned.scores, learned.vetoes
        exclude_ids = learned.exclude_ids(exclude_ids, len(profiles))
    excluded = _excluded(prepared, exclude_ids) if exclude_ids is not None else None
    starts = np.asarray(start, np.int64) if start is not None else None
    chosen = select(
        compiled,
        scores,
        vetoes,
        profiles,
        prepared.prior,
        settings,
        excluded,
        starts,
        sense=evidence.sense,
    )
    items = explain(
        papers,
        profiles,
        compiled,
        chosen,
        evidence.lexical,
        prepared.index,
        analyzer,
        settings,
        prepared.memo,
        evidence.meaning,
        evidence.related,
    )
    if learned is not None:
        items = learned.explain(items, prepared.column)
    return [Ranked(i, int(n)) for i, n in zip(items, chosen.matched.tolist(), strict=True)]


def rank(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    now: datetime,
    settings: RankSettings = DEFAULT_SETTINGS,
    synonyms: Mapping[str, Sequence[str]] | None = None,
    exclude_ids: Sequence[Collection[str]] | None = None,
) -> list[tuple[DigestItem, ...]]:
    """Rank all papers for all profiles: one tuple per profile, best first.

    Each tuple is what the digest holds: papers with relevance >= the profile's
    min_score, not vetoed, not among `exclude_ids[i]` (paper ids profile i must not get),
    at most max_items, each with its matches and snippets.
    Pure: the result depends only on the arguments (no I/O, no clock).
    """
    if not profiles:
        return []
    if not papers:
        return [() for _ in profiles]
    ranked = rank_prepared(prepare(papers, now, settings, synonyms), profiles, exclude_ids)
    return [r.items for r in ranked]


def _excluded(prepared: Prepared, exclude_ids: Sequence[Collection[str]]) -> sp.csr_matrix:
    """profiles x papers, 1 where a profile must not get a paper (ids not here are moot)."""
    column = prepared.column
    rows: list[int] = []
    cols: list[int] = []
    for i, ids in enumerate(exclude_ids):
        hits = [column[pid] for pid in ids if pid in column]
        rows += [i] * len(hits)
        cols += hits
    shape = (len(exclude_ids), len(prepared.papers))
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix
