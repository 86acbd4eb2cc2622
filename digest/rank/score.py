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
score are kept (`select` computes relevance, the gates and the cut, a chunk of profiles
at a time).
Because each keyword is divided by its own maximum attainable BM25 score, relevance 1.0
means "the heaviest keyword matches as strongly as BM25 can tell" for every profile, and
one min_score means the same thing everywhere.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from operator import attrgetter

import numpy as np
import scipy.sparse as sp

from digest.model import Keyword, Paper, Profile
from digest.rank.analyzer import Analyzer
from digest.rank.index import PaperIndex
from digest.rank.query import KeywordPlan, compile_keyword
from digest.rank.related import RelatedTerms
from digest.rank.settings import RankSettings

DEFAULT_SETTINGS = RankSettings()
_MAX_SAT = 0.999  # keeps log1p(-s) finite


@dataclass(frozen=True, slots=True)
class Ragged:
    """A list of int lists held flat: row i is values[offsets[i]:offsets[i + 1]].

    One list a profile would be 100,000 objects for the garbage collector to walk at
    every full collection while they live; rows are made when asked for (the few
    profiles that get explained)."""

    values: list[int]
    offsets: list[int]  #: len(self) + 1 positions

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> list[int]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self.values[self.offsets[i] : self.offsets[i + 1]]


@dataclass(frozen=True, slots=True)
class Compiled:
    """All profiles' keywords as matrices over one shared list of keyword plans."""

    plans: list[KeywordPlan | None]
    weights: sp.csr_matrix  #: profiles x plans, relative keyword weights
    excludes: sp.csr_matrix  #: profiles x plans, 1.0 for each exclusion
    keyword_plans: Ragged  #: per profile, plan id of each keyword (-1: none)
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
    profiles: Sequence[Profile],
    analyzer: Analyzer,
    settings: RankSettings,
    related: RelatedTerms | None = None,
) -> Compiled:
    """Compile each distinct keyword once (profiles share many) into weight matrices.

    Plans are numbered in order of first appearance (each profile's keywords, then its
    exclusions, profile after profile) and the matrices' entries come in profile order:
    the product in `select` sums a profile's keywords in that order. Each keyword is
    read in C loops (`map`, `attrgetter`) and numbered with numpy: 100,000 profiles
    hold ~500,000 keywords, and a Python statement for each was most of the time.
    `related`: the stored papers' related terms (`rank.related`); each plan then carries
    its keyword's (`with_related`), when `settings.uses_related`.
    """
    kws = list(map(attrgetter("keywords"), profiles))
    exs = list(map(attrgetter("exclude"), profiles))
    n_kw = np.fromiter(map(len, kws), np.int64, len(kws))
    n_ex = np.fromiter(map(len, exs), np.int64, len(exs))
    chain = itertools.chain.from_iterable
    flat = list(chain(chain(zip(kws, exs, strict=True))))
    n = len(flat)
    texts = list(map(attrgetter("text"), flat))
    phrase = np.fromiter(map(attrgetter("phrase"), flat), bool, n)
    weight = np.fromiter(map(attrgetter("weight"), flat), np.float64, n)
    text_id = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    code = np.fromiter(map(text_id.__getitem__, texts), np.int64, n) * 2 + phrase
    # plan id = rank of a (text, phrase) by its first appearance
    distinct, first, inverse = np.unique(code, return_index=True, return_inverse=True)
    appearance = np.argsort(first, kind="stable")
    pid = np.empty(len(distinct), np.int64)
    pid[appearance] = np.arange(len(distinct))
    pid = pid[inverse.reshape(-1)]
    keys = [(texts[j], bool(phrase[j])) for j in first[appearance].tolist()]
    plans = [compile_keyword(Keyword(t, p), analyzer, settings.exact_share) for t, p in keys]
    if related and settings.uses_related:
        plans = [with_related(plan, related, settings) for plan in plans]
    real = np.fromiter((p is not None for p in plans), bool, len(plans))[pid]
    row = np.repeat(np.arange(len(profiles), dtype=np.int64), n_kw + n_ex)
    is_kw = np.repeat(np.tile([True, False], len(profiles)), np.column_stack([n_kw, n_ex]).ravel())
    live = is_kw & real & (weight > 0)
    top = np.zeros(len(profiles))
    np.maximum.at(top, row[live], weight[live])
    shape = (len(profiles), len(plans))
    relative = (weight[live] / top[row[live]]).astype(np.float32)
    weights = sp.csr_matrix((relative, (row[live], pid[live])), shape=shape)
    drop = ~is_kw & real
    excludes = sp.csr_matrix(
        (np.ones(int(drop.sum()), np.float32), (row[drop], pid[drop])), shape=shape
    )
    weights.sum_duplicates()
    excludes.sum_duplicates()
    per_profile = Ragged(
        np.where(real, pid, -1)[is_kw].tolist(), np.concatenate([[0], np.cumsum(n_kw)]).tolist()
    )
    return Compiled(plans, weights, excludes, per_profile, [t for t, _ in keys])


def with_related(
    plan: KeywordPlan | None, related: RelatedTerms, settings: RankSettings
) -> KeywordPlan | None:
    """`plan` with its keyword's related terms (the `related_terms` heaviest of its
    anchors' neighbours, the keyword's own features left out)."""
    if plan is None:
        return None
    found = related.neighbours(plan.anchors(), plan.all_features())[: int(settings.related_terms)]
    return replace(plan, related=found) if found else plan


def related_evidence(
    plans: Sequence[KeywordPlan | None], index: PaperIndex
) -> sp.csr_matrix | None:
    """min(1, sum_g r(k, g) * sat(g, p)) for every plan and paper (`rank.related`): how
    much a paper says each keyword in other words; None when no plan has related terms
    in the index."""
    vocab = index.vocab
    q: tuple[list[int], list[int], list[float]] = ([], [], [])
    for k, plan in enumerate(plans):
        if plan is None:
            continue
        for g, r in plan.related:
            at = vocab.get(g)
            if at is not None:
                q[0].append(k)
                q[1].append(at)
                q[2].append(r)
    if not q[0]:
        return None
    shape = (len(plans), len(vocab))
    weights = sp.csr_matrix((np.asarray(q[2], np.float32), (q[0], q[1])), shape=shape)
    weights.sum_duplicates()
    got = (weights @ index.sat).tocsr()
    got.data = np.minimum(got.data, 1.0)
    return got.astype(np.float32)


def related_scores(raw: sp.csr_matrix, settings: RankSettings) -> sp.csr_matrix | None:
    """related(k, p) = related_credit * `related_evidence`, below min_evidence dropped:
    what a keyword's related terms give a paper (None when the bridges are off)."""
    if settings.related_credit <= 0:
        return None
    got = raw.copy()
    got.data = np.minimum(got.data * np.float32(settings.related_credit), _MAX_SAT)
    got.data[got.data < settings.min_evidence] = 0.0
    got.eliminate_zeros()
    return got


@dataclass(frozen=True, slots=True)
class Sense:
    """What `select` needs to weigh partial matches (`RankSettings.sense_floor`), plans x
    papers, as log(1 - x) so a profile's noisy OR is one product."""

    #: log(1 - s) where s came from some words of a multi-word keyword alone
    partial: sp.csr_matrix
    #: the same, times g = sense_floor + (1 - sense_floor) * specificity: what it counts
    #: for where the paper shows no context
    doubted: sp.csr_matrix
    #: log(1 - c), c the paper's context for the keyword: the keyword as a whole (its
    #: phrase) or its related terms (`related_evidence`)
    context: sp.csr_matrix


def specificity(
    plans: Sequence[KeywordPlan | None], index: PaperIndex, phrase: sp.csr_matrix
) -> sp.csr_matrix:
    """How much the words of each multi-word keyword that a paper has stand for the
    keyword, plans x papers in [0, 1]: min(1, sum over its words u in the paper of
    P(keyword | u)), P counted over the indexed papers (the papers with u that have the
    keyword's phrase, smoothed). "unlearning" mostly comes as "machine unlearning" or
    close, "mixture" of "data mixture" mostly as a mixture of experts: the first alone
    is trusted, the second doubted."""
    vocab = index.vocab
    present = index.sat.copy()
    present.data[:] = 1.0
    has_phrase = phrase.copy().tocsr()
    has_phrase.data[:] = 1.0
    rows: list[int] = []
    cols: list[int] = []
    for k, plan in enumerate(plans):
        if plan is None or not plan.bag:
            continue
        for unit in plan.bag:
            at = vocab.get(unit.features[0][0])
            if at is not None:
                rows.append(k)
                cols.append(at)
    shape = (len(plans), len(vocab))
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float32)
    r, c = np.asarray(rows), np.asarray(cols)
    both = np.asarray(has_phrase[r].multiply(present[c]).sum(axis=1)).ravel()
    alone = np.diff(present.indptr)[c]
    trust = both / (alone + 1.0)
    weights = sp.csr_matrix((trust.astype(np.float32), (r, c)), shape=shape)
    got = (weights @ present).tocsr()
    got.data = np.minimum(got.data, 1.0)
    return got.astype(np.float32)


def sense_of(
    words: sp.csr_matrix,
    phrase: sp.csr_matrix,
    related: sp.csr_matrix | None,
    scores: sp.csr_matrix,
    settings: RankSettings,
    specific: sp.csr_matrix,
) -> Sense:
    """The `Sense` of the evidence: `words` (s(k, p) from the keywords' own words),
    `phrase` (its phrase part), `related` (`related_evidence`, or None), `scores` (what
    is selected on) and `specific` (`specificity`)."""
    mask = (words > phrase).astype(np.float32)  # the words apart gave more: some alone
    partial = scores.multiply(mask).tocsr()
    partial.data = np.log1p(-np.minimum(partial.data, _MAX_SAT))
    floor = settings.sense_floor
    trust = np.minimum(lookup_csr(specific, partial), 1.0)
    doubted = sp.csr_matrix(
        (partial.data * (floor + (1.0 - floor) * trust), partial.indices, partial.indptr),
        shape=partial.shape,
    )
    context = phrase.copy().tocsr()
    context.data[context.data < settings.min_evidence] = 0.0
    context.eliminate_zeros()
    if related is not None:
        context = context.maximum(related).tocsr()
    context.data = np.log1p(-np.minimum(context.data, _MAX_SAT))
    return Sense(partial.astype(np.float32), doubted.astype(np.float32), context.astype(np.float32))


def lookup_csr(matrix: sp.csr_matrix, at: sp.csr_matrix) -> np.ndarray:
    """`matrix` at each stored entry of `at` (a CSR matrix of the same shape), in `at`'s
    order."""
    rows = np.repeat(np.arange(at.shape[0]), np.diff(at.indptr))
    return lookup(matrix, rows, at.indices)


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
