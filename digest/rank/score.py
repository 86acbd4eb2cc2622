"""Score every profile against every paper in batched sparse products (`ranker` explains).

Per keyword k and paper p (all in [0, 1)):

    phrase(k, p) = sum of shares * sat over the keyword's phrase features, and 0 unless
                   every pair of neighbouring words occurs (for phrases of 3+ words)
    bag(k, p)    = scattered_credit * mean_sat * coverage over the separate terms u of an
                   unquoted multi-word keyword (0 for a single term or a quoted phrase):
                   mean_sat = sum_u idf_u * sat_u / sum_u idf_u and
                   coverage = sum_u idf_u * [u occurs] / sum_u idf_u
    s(k, p)      = max(phrase, bag)            -> words together beat words apart

Per profile P with relative weights w_k = weight_k / max weight (a "noisy OR": one strong
keyword suffices, each further match adds):

    relevance(P, p) = 1 - prod_k (1 - s(k, p)) ** w_k
                    = -expm1( W @ log1p(-S) )  -> one sparse product, profiles x keywords
                                                  times keywords x papers
    score(P, p)     = relevance * (1 - pw - rw + pw * popularity(p) + rw * recency(p))

A paper is kept when relevance passes the profile's cut-off (`cutoff`: its own min_score,
else max(floor, ratio * its best relevance of the day); relevance, so the tie-breakers can
never lift an irrelevant paper in) and no exclusion matches it; the best `max_items` by
score are kept.
Because each keyword is divided by its own maximum attainable BM25 score, relevance 1.0
means "the heaviest keyword matches as strongly as BM25 can tell" for every profile, and
one min_score means the same thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import scipy.sparse as sp

from digest.model import Keyword, Paper, Profile
from digest.rank.analyzer import Analyzer
from digest.rank.cutoff import thresholds
from digest.rank.index import PaperIndex
from digest.rank.query import KeywordPlan, compile_keyword
from digest.rank.settings import RankSettings

DEFAULT_SETTINGS = RankSettings()
_MAX_SAT = 0.999  # keeps log1p(-s) finite


@dataclass(frozen=True, slots=True)
class Compiled:
    """All profiles' keywords as matrices over one shared list of keyword plans."""

    plans: list[KeywordPlan | None]
    weights: sp.csr_matrix  #: profiles x plans, relative keyword weights
    excludes: sp.csr_matrix  #: profiles x plans, 1.0 for each exclusion
    keyword_plans: list[list[int]]  #: per profile, plan id of each keyword (-1: none)
    texts: list[str] | None = None  #: the keyword text of each plan, as typed


@dataclass(frozen=True, slots=True)
class Selections:
    """What the batch chose, flat: profile i owns positions offsets[i]:offsets[i+1]."""

    offsets: np.ndarray  #: n_profiles + 1 positions
    papers: np.ndarray  #: paper column of each chosen item, best first within a profile
    relevance: np.ndarray  #: keyword relevance in [0, 1] (what min_score is tested on)
    score: np.ndarray  #: relevance blended with popularity and recency
    #: per profile: papers that passed (cut-off, vetoes, window, ledger) before max_items
    matched: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, i: int) -> slice:
        """Positions of profile i's items."""
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))


def compile_profiles(
    profiles: Sequence[Profile], analyzer: Analyzer, settings: RankSettings
) -> Compiled:
    """Compile each distinct keyword once (profiles share many) into weight matrices."""
    plan_of: dict[tuple[str, bool], int] = {}
    plans: list[KeywordPlan | None] = []

    def plan_id(text: str, phrase: bool) -> int:
        key = (text, phrase)
        got = plan_of.get(key)
        if got is None:
            got = plan_of[key] = len(plans)
            plans.append(compile_keyword(Keyword(text, phrase), analyzer, settings.exact_share))
        return got

    w_rows, w_cols, w_vals, e_rows, e_cols, per_profile = [], [], [], [], [], []
    # one pass a profile, the plan looked up in place (100,000 profiles: this loop is
    # most of the time compiling takes)
    get = plan_of.get
    for i, profile in enumerate(profiles):
        ids = []
        live = []
        for kw in profile.keywords:
            pid = get((kw.text, kw.phrase))
            if pid is None:
                pid = plan_id(kw.text, kw.phrase)
            if plans[pid] is None:
                ids.append(-1)
                continue
            ids.append(pid)
            if kw.weight > 0:
                live.append((pid, kw.weight))
        if live:
            top = max(w for _, w in live)
            for pid, w in live:
                w_rows.append(i)
                w_cols.append(pid)
                w_vals.append(w / top)
        for kw in profile.exclude:
            pid = plan_id(kw.text, kw.phrase)
            if plans[pid] is not None:
                e_rows.append(i)
                e_cols.append(pid)
        per_profile.append(ids)
    shape = (len(profiles), len(plans))
    weights = sp.csr_matrix((np.asarray(w_vals, np.float32), (w_rows, w_cols)), shape=shape)
    excludes = sp.csr_matrix((np.ones(len(e_rows), np.float32), (e_rows, e_cols)), shape=shape)
    weights.sum_duplicates()
    excludes.sum_duplicates()
    texts = [""] * len(plans)
    for (text, _), pid in plan_of.items():
        texts[pid] = text
    return Compiled(plans, weights, excludes, per_profile, texts)


def keyword_scores(
    plans: Sequence[KeywordPlan | None], index: PaperIndex, settings: RankSettings
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """s(k, p) for every plan and paper, and the phrase part alone (for vetoes)."""
    vocab, idf = index.vocab, index.idf
    unseen_idf = math.log1p((index.n_papers + 0.5) / 0.5)
    qp: tuple[list[int], list[int], list[float]] = ([], [], [])
    qn: tuple[list[int], list[int], list[float]] = ([], [], [])
    qb: tuple[list[int], list[int], list[float]] = ([], [], [])
    need = np.zeros(len(plans), dtype=np.float32)

    def put(q: tuple[list[int], list[int], list[float]], row: int, col: int, val: float) -> None:
        q[0].append(row)
        q[1].append(col)
        q[2].append(val)

    for k, plan in enumerate(plans):
        if plan is None:
            continue
        if plan.need_all and not all(f in vocab for f in plan.need_all):
            pass  # some pair never occurs: the phrase cannot match anywhere
        else:
            for f, share in plan.phrase.features:
                if f in vocab:
                    put(qp, k, vocab[f], share)
            for f in plan.need_all:
                put(qn, k, vocab[f], 1.0)
            need[k] = len(plan.need_all)
        if plan.bag:
            unit_idf = [
                (idf[vocab[u.features[0][0]]] if u.features[0][0] in vocab else unseen_idf)
                ** settings.idf_power
                for u in plan.bag
            ]
            total = sum(unit_idf)
            for unit, u_idf in zip(plan.bag, unit_idf, strict=True):
                for f, share in unit.features:
                    if f in vocab:
                        put(qb, k, vocab[f], u_idf * share / total)
    shape = (len(plans), len(vocab))

    def matrix(q: tuple[list[int], list[int], list[float]]) -> sp.csr_matrix:
        m = sp.csr_matrix((np.asarray(q[2], np.float32), (q[0], q[1])), shape=shape)
        m.sum_duplicates()
        return m

    sat = index.sat
    present = sat.copy()
    present.data[:] = 1.0
    phrase = (matrix(qp) @ sat).tocsr()
    if qn[0]:
        counts = (matrix(qn) @ present).tocsr()
        rows = np.repeat(np.arange(len(plans)), np.diff(counts.indptr))
        counts.data = (counts.data >= need[rows]).astype(np.float32)
        gated = sp.diags((need > 0).astype(np.float32)) @ phrase
        free = sp.diags((need == 0).astype(np.float32)) @ phrase
        phrase = (free + gated.multiply(counts)).tocsr()
    phrase.eliminate_zeros()
    if qb[0]:
        # Words apart: idf-weighted mean saturation times idf-weighted coverage, so a
        # keyword with half its (rare) words missing gets about a quarter, not a half.
        bag_q = matrix(qb)
        coverage = (bag_q @ present).tocsr()
        coverage.data = coverage.data**settings.coverage_power
        bag = (bag_q @ sat).multiply(coverage) * settings.scattered_credit
        scores = phrase.maximum(bag).tocsr()
    else:
        scores = phrase
    scores.data = np.minimum(scores.data, _MAX_SAT)
    scores.data[scores.data < settings.min_evidence] = 0.0
    scores.eliminate_zeros()
    return scores.astype(np.float32), phrase


def paper_priors(
    papers: Sequence[Paper], now: datetime | date, settings: RankSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Popularity (log upvotes) and recency (half-life decay) of each paper, in [0, 1]."""
    today = now.date() if isinstance(now, datetime) else now
    scale = math.log1p(max(settings.popularity_saturation, 1))
    pop = np.array([min(1.0, math.log1p(max(p.upvotes or 0, 0)) / scale) for p in papers])
    rec = np.zeros(len(papers))
    half = max(settings.recency_half_life_days, 1e-9)
    for j, p in enumerate(papers):
        day = p.published or (p.first_seen.date() if p.first_seen else None)
        if day is not None:
            rec[j] = 0.5 ** (max((today - day).days, 0) / half)
    return pop.astype(np.float32), rec.astype(np.float32)


def select(
    compiled: Compiled,
    scores: sp.csr_matrix,
    vetoes: sp.csr_matrix,
    profiles: Sequence[Profile],
    prior: np.ndarray,
    settings: RankSettings,
    excluded: sp.csr_matrix | None = None,
    first_column: np.ndarray | None = None,
) -> Selections:
    """Relevance of every (profile, paper), gated, blended and cut, in profile chunks.

    Everything stays sparse: only (profile, paper) pairs with some matching keyword exist
    in the product, the gate drops most of them, and the survivors are sorted by
    (profile, -score, paper) with one argsort; each profile keeps its first max_items.
    Memory is bounded by the chunk's pairs, not by profiles x papers. `excluded` (profiles
    x papers, non-zero where a profile must not get a paper: what its reader was sent
    already) drops pairs before the cut, so a profile still gets its max_items; so does
    `first_column` (profile i considers paper columns from first_column[i] on).
    """
    log_miss = scores.copy()
    log_miss.data = np.log1p(-log_miss.data)
    floors_all = np.array([max(settings.min_score_of(p), 1e-6) for p in profiles], np.float32)
    limits_all = np.array([settings.max_items_of(p) for p in profiles], np.int64)
    # the gate below applies min_score and the floor; the day's part is for profiles
    # without their own min_score (NaN), the others pass it (threshold 0)
    own_all = np.array([np.nan if p.min_score is None else 0.0 for p in profiles])
    adaptive = np.isnan(own_all)
    chunk = max(1, settings.profile_chunk)
    counts, cols_out, rel_out, score_out, passed = [], [], [], [], []
    for lo in range(0, len(profiles), chunk):
        hi = min(lo + chunk, len(profiles))
        log_rel = (compiled.weights[lo:hi] @ log_miss).tocsr()
        # relevance >= floor  <=>  log(1 - relevance) <= log(1 - floor): test before expm1
        limit = np.log1p(-floors_all[lo:hi])
        if np.all(limit == limit[0]):
            idx = np.flatnonzero(log_rel.data <= limit[0])
            rows = np.searchsorted(log_rel.indptr, idx, side="right") - 1
        else:
            rows = np.repeat(np.arange(hi - lo), np.diff(log_rel.indptr))
            idx = np.flatnonzero(log_rel.data <= limit[rows])
            rows = rows[idx]
        cols, rv = log_rel.indices[idx], -np.expm1(log_rel.data[idx])
        ex = compiled.excludes[lo:hi]
        if ex.nnz:  # vetoes are looked up for the survivors of profiles with exclusions
            check = np.flatnonzero(np.diff(ex.indptr)[rows] > 0)
            hit = lookup((ex @ vetoes).tocsr(), rows[check], cols[check]) > 0
            alive = np.ones(len(rows), dtype=bool)
            alive[check[hit]] = False
            rows, cols, rv = rows[alive], cols[alive], rv[alive]
        if first_column is not None:
            keep = cols >= first_column[lo:hi][rows]
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        if adaptive[lo:hi].any() and settings.cutoff_ratio > 0 and len(rows):
            # the day each profile reads is its window (vetoes applied), ledger included
            keep = rv >= _day_thresholds(rows, rv, own_all[lo:hi], settings)[rows]
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        if excluded is not None and excluded[lo:hi].nnz:
            keep = lookup(excluded[lo:hi], rows, cols) == 0
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        sc = rv * prior[cols]
        passed.append(np.bincount(rows, minlength=hi - lo))
        rows, cols, rv, sc = _contenders(rows, cols, rv, sc, limits_all[lo:hi])
        # rows ascending, then score descending; stable sort keeps paper order on ties
        order = np.argsort(rows + (1.0 - sc.astype(np.float64)) * 0.5, kind="stable")
        rows, cols, rv, sc = rows[order], cols[order], rv[order], sc[order]
        starts = np.searchsorted(rows, np.arange(hi - lo))
        rank_in_row = np.arange(len(rows)) - starts[rows]
        take = rank_in_row < limits_all[lo:hi][rows]
        counts.append(np.bincount(rows[take], minlength=hi - lo))
        cols_out.append(cols[take].astype(np.int64))
        rel_out.append(rv[take].astype(np.float64))
        score_out.append(sc[take].astype(np.float64))
    offsets = np.zeros(len(profiles) + 1, dtype=np.int64)
    if counts:
        np.cumsum(np.concatenate(counts), out=offsets[1:])

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    return Selections(
        offsets,
        cat(cols_out, np.int64),
        cat(rel_out, np.float64),
        cat(score_out, np.float64),
        cat(passed, np.int64),
    )


#: Score buckets `_contenders` counts in (scores lie in [0, 1]).
_BUCKETS = 256


def _contenders(
    rows: np.ndarray, cols: np.ndarray, rv: np.ndarray, sc: np.ndarray, limits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs that can still be among their profile's best `limits[row]` by score, in
    their order: a profile drops the pairs whose score bucket lies below the highest
    bucket that, with those above it, holds its limit. A dropped pair scores strictly
    below at least `limit` others of its profile, so the sort that follows keeps the
    same first `limit` pairs in the same order, and sorts ~limit pairs a profile instead
    of every pair that passed (~200 a profile on a broad 2,000-paper day)."""
    if not len(rows):
        return rows, cols, rv, sc
    n = len(limits)
    bucket = np.minimum((sc * _BUCKETS).astype(np.int64), _BUCKETS - 1)
    hist = np.bincount(rows * _BUCKETS + bucket, minlength=n * _BUCKETS).reshape(n, _BUCKETS)
    at_least = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # pairs in this bucket or above
    lowest = np.maximum((at_least >= limits[:, None]).sum(axis=1) - 1, 0)
    keep = bucket >= lowest[rows]
    return rows[keep], cols[keep], rv[keep], sc[keep]


def _day_thresholds(
    rows: np.ndarray, rv: np.ndarray, own: np.ndarray, settings: RankSettings
) -> np.ndarray:
    """`cutoff.thresholds` of a chunk's profiles from their surviving pairs (`rows`
    ascending, as the CSR product yields them): the best of each row by one reduceat."""
    best = np.zeros(len(own), dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    best[rows[starts]] = np.maximum.reduceat(rv, starts)
    return thresholds(best, own, 0.0, settings.cutoff_ratio)


def lookup(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[i], cols[i]] for many pairs at once (0 where absent)."""
    if not len(rows) or not matrix.nnz:
        return np.zeros(len(rows), dtype=np.float32)
    m = matrix.tocsr()
    m.sort_indices()
    n_cols = m.shape[1]
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_cols + m.indices
    want = rows.astype(np.int64) * n_cols + cols
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return np.where(keys[pos] == want, m.data[pos], 0).astype(np.float32)
