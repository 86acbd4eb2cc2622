"""Which papers each profile gets: relevance gated, blended and cut, in profile chunks.

`score` gives s(k, p) for every keyword plan and paper; here a chunk of profiles gets its
log-miss matrix (W @ log1p(-S)) in one sparse product, and every further step works on the
flat arrays of the pairs that passed the previous one, in the product's own order (rows
ascending, and within a row the order the product put the papers in; the sort at the end
is stable, so that order breaks exact ties in score, as it always has):

    floor      log(1 - relevance) <= log(1 - floor): tested before expm1, on every pair
    vetoes     a profile's exclusions (the phrase pattern of its excluded keywords)
    window     `first_column`: profile i reads paper columns from first_column[i] on
    day        `cutoff.thresholds` from the profile's best relevance of its window
    ledger     `excluded`: papers its reader was sent before (they set the day's bar)
    top        each profile's best `max_items` by score (`_contenders` first)

The work is linear in the product's pairs (~660 a profile on a 2,000-paper day, ~250 of
them past the floor): each step is a few vectorised passes over them, no Python per
profile. Memory is bounded by the chunk's pairs, not by profiles x papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from digest.model import Profile
from digest.rank.cutoff import thresholds
from digest.rank.fork import fork_map
from digest.rank.score import Compiled, Selections, Sense, lookup
from digest.rank.settings import RankSettings

#: One chunk's result: items per profile, their paper columns, relevance and score, and
#: the pairs that passed per profile (`_top`).
Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: Score buckets `_contenders` counts in (scores lie in [0, 1]).
_BUCKETS = 256
#: Most cells (profiles with exclusions x papers) a chunk's veto bitmap may have; past
#: it the vetoes are looked up pair by pair (`lookup`), which needs no such block.
_BITMAP_CELLS = 1 << 24


def select(
    compiled: Compiled,
    scores: sp.csr_matrix,
    vetoes: sp.csr_matrix,
    profiles: Sequence[Profile],
    prior: np.ndarray,
    settings: RankSettings,
    excluded: sp.csr_matrix | None = None,
    first_column: np.ndarray | None = None,
    workers: int = 1,
    sense: Sense | None = None,
) -> Selections:
    """Relevance of every (profile, paper), gated, blended and cut, in profile chunks.

    Everything stays sparse: only (profile, paper) pairs with some matching keyword exist
    in the product, the gate drops most of them, and the survivors are sorted by
    (profile, -score, paper) with one argsort; each profile keeps its first max_items.
    `excluded` (profiles x papers, non-zero where a profile must not get a paper: what
    its reader was sent already) drops pairs before the cut, so a profile still gets its
    max_items; so does `first_column` (profile i considers paper columns from
    first_column[i] on). `workers` > 1 splits the chunks over that many processes
    (`fork.fork_map`: the same chunks, the same result, merged in profile order).
    `sense` (`score.sense_of`, when `settings.sense_floor` < 1): partial matches of
    multi-word keywords count less in a profile where the paper shows little context
    (`_sensed`).
    """
    log_miss = scores.copy()
    log_miss.data = np.log1p(-log_miss.data)
    # a profile's own min_score (NaN where it set none: then the default floor, and the
    # day's part of the cut-off applies; a profile with its own passes that part)
    own_all = np.array([p.min_score for p in profiles], dtype=np.float64)
    adaptive = np.isnan(own_all)
    floors_all = np.where(adaptive, settings.default_min_score, own_all)
    floors_all = np.maximum(floors_all, 1e-6).astype(np.float32)
    own_all[~adaptive] = 0.0
    default = settings.default_max_items
    limits_all = np.array(
        [default if p.max_items is None else p.max_items for p in profiles], np.int64
    )
    chunk = max(1, settings.profile_chunk)

    def one(lo: int) -> Part:
        hi = min(lo + chunk, len(profiles))
        log_rel = (compiled.weights[lo:hi] @ log_miss).tocsr()
        if sense is not None:
            log_rel = _sensed(log_rel, compiled.weights[lo:hi], sense)
        rows, cols, rv = _past_floor(log_rel, floors_all[lo:hi])
        out = None  # pairs left out before the day's bar is set: vetoed, before the window
        ex = compiled.excludes[lo:hi]
        if ex.nnz and len(rows):
            out = _vetoed(ex, vetoes, rows, cols)
        if first_column is not None:
            early = cols < first_column[lo:hi][rows]
            out = early if out is None else out | early
        keep = None if out is None else ~out
        if adaptive[lo:hi].any() and settings.cutoff_ratio > 0 and len(rows):
            # the day each profile reads is its window (vetoes applied), ledger included;
            # a pair left out sets no bar (relevance 0: every pair here has more)
            seen = rv if out is None else np.where(out, np.float32(0), rv)
            bar = rv >= _day_thresholds(rows, seen, own_all[lo:hi], settings)[rows]
            keep = bar if keep is None else keep & bar
        if keep is not None:  # one pass for all three
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        if excluded is not None and excluded[lo:hi].nnz:
            keep = lookup(excluded[lo:hi], rows, cols) == 0
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        return _top(rows, cols, rv, rv * prior[cols], limits_all[lo:hi])

    starts = list(range(0, len(profiles), chunk))
    # each process a contiguous run of chunks: its part of the result is one piece
    size = max(1, -(-len(starts) // max(1, workers)))  # chunks a process
    runs = [starts[k : k + size] for k in range(0, len(starts), size)]
    parts = [p for got in fork_map(lambda run: [one(lo) for lo in run], runs, workers) for p in got]
    offsets = np.zeros(len(profiles) + 1, dtype=np.int64)
    if parts:
        np.cumsum(np.concatenate([p[0] for p in parts]), out=offsets[1:])

    def cat(k: int, dtype: type) -> np.ndarray:
        return np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, dtype=dtype)

    return Selections(
        offsets, cat(1, np.int64), cat(2, np.float64), cat(3, np.float64), cat(4, np.int64)
    )


def _sensed(log_rel: sp.csr_matrix, weights: sp.csr_matrix, sense: Sense) -> sp.csr_matrix:
    """`log_rel` with each profile's partial matches doubted where the paper shows little
    context: log_rel + (1 - context) * (W @ doubted - W @ partial), context the noisy OR
    of the paper's context over the profile's keywords (`score.Sense`)."""
    n_plans = weights.shape[1]

    def padded(m: sp.csr_matrix) -> sp.csr_matrix:
        if m.shape[0] >= n_plans:
            return m
        # plans added after the evidence (ratings: `learn`) have no partial matches
        return sp.vstack([m, sp.csr_matrix((n_plans - m.shape[0], m.shape[1]))]).tocsr()

    lift = (weights @ padded(sense.doubted) - weights @ padded(sense.partial)).tocsr()
    lift.eliminate_zeros()
    if not lift.nnz:
        return log_rel
    ctx = (weights @ padded(sense.context)).tocsr()
    rows = np.repeat(np.arange(lift.shape[0]), np.diff(lift.indptr))
    unshown = np.exp(lookup(ctx, rows, lift.indices))  # 1 - context
    adjust = sp.csr_matrix((unshown * lift.data, lift.indices, lift.indptr), shape=lift.shape)
    return (log_rel + adjust).tocsr()


def _past_floor(
    log_rel: sp.csr_matrix, floors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, paper column, relevance) of the pairs whose relevance reaches their row's
    floor, in the product's order: relevance >= floor <=> log(1 - relevance) <=
    log(1 - floor), tested before expm1 (most pairs fail it)."""
    lengths = np.diff(log_rel.indptr)
    limit = np.log1p(-floors)
    if np.all(limit == limit[0]):
        idx = np.flatnonzero(log_rel.data <= limit[0])
    else:
        idx = np.flatnonzero(log_rel.data <= np.repeat(limit, lengths))
    rows = np.repeat(np.arange(len(floors), dtype=np.int32), lengths)[idx]
    return rows, log_rel.indices[idx], -np.expm1(log_rel.data[idx])


def _vetoed(
    ex: sp.csr_matrix, vetoes: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """True for each pair (rows[i], cols[i]) whose profile excludes a keyword the paper
    has as a phrase (`ex`: the chunk's profiles x plans; `vetoes`: plans x papers). Only
    the profiles with exclusions are looked at: their veto pattern goes into a bitmap of
    those profiles x papers when that is small, else each pair is looked up."""
    has = np.diff(ex.indptr) > 0
    check = np.flatnonzero(has[rows])
    out = np.zeros(len(rows), dtype=bool)
    if not len(check):
        return out
    which = np.flatnonzero(has)
    pattern = (ex[which] @ vetoes).tocsr()
    if len(which) * pattern.shape[1] > _BITMAP_CELLS:
        compact = np.full(len(has), -1, dtype=np.int64)
        compact[which] = np.arange(len(which))
        out[check] = lookup(pattern, compact[rows[check]], cols[check]) > 0
        return out
    width = pattern.shape[1]  # flat indices: cheaper than a 2-d fancy index
    bitmap = np.zeros(len(which) * width, dtype=bool)
    bitmap[np.repeat(np.arange(len(which)) * width, np.diff(pattern.indptr)) + pattern.indices] = 1
    compact = np.cumsum(has) - 1  # row -> its place among the rows with exclusions
    out[check] = bitmap[compact[rows[check]] * width + cols[check]]
    return out


def _top(
    rows: np.ndarray, cols: np.ndarray, rv: np.ndarray, sc: np.ndarray, limits: np.ndarray
) -> Part:
    """(items per row, their columns, relevance, score, pairs that passed per row): each
    row's best `limits[row]` pairs by score, best first; ties keep the pairs' order."""
    n = len(limits)
    passed = np.bincount(rows, minlength=n)
    rows, cols, rv, sc = _contenders(rows, cols, rv, sc, limits)
    # rows ascending, then score descending; stable sort keeps the pairs' order on ties
    order = np.argsort(rows + (1.0 - sc.astype(np.float64)) * 0.5, kind="stable")
    rows, cols, rv, sc = rows[order], cols[order], rv[order], sc[order]
    starts = np.searchsorted(rows, np.arange(n))
    take = np.arange(len(rows)) - starts[rows] < limits[rows]
    return (
        np.bincount(rows[take], minlength=n),
        cols[take].astype(np.int64),
        rv[take].astype(np.float64),
        sc[take].astype(np.float64),
        passed,
    )


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
    bucket = (sc * np.float32(_BUCKETS)).astype(np.int32)
    np.minimum(bucket, _BUCKETS - 1, out=bucket)
    cell = (
        rows * _BUCKETS + bucket
        if n * _BUCKETS < 2**31
        else rows * _BUCKETS + bucket.astype(np.int64)
    )
    below = np.cumsum(np.bincount(cell, minlength=n * _BUCKETS).reshape(n, _BUCKETS), axis=1)
    # the highest bucket b whose pairs and those above hold the limit: the pairs at or
    # above b are total - below[b - 1] >= limit, i.e. below[b - 1] <= total - limit
    lowest = (below[:, :-1] <= (below[:, -1] - limits)[:, None]).sum(axis=1)
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
