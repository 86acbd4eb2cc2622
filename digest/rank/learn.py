"""Learning from ratings: a reader's "more like this" / "not for me" as one more term of
their profile, with the keywords as the prior.

    vectors(prepared)            the day's papers as tf-idf rows over all their features
                                 (`alike`, with the semantic layer's vectors when on)
    taste(prepared, ratings)     per rated profile: a score per paper in (-1, 1), and the
                                 liked paper that lifted it
    augment(...)                 those scores as one extra "keyword" of each rated profile

A rated paper is read like a "more like this" query (Lucene's MoreLikeThis, a one-sided
Rocchio): its `query_terms` heaviest tf-idf features, unit length, against the day's papers
as unit tf-idf rows; each paper a like lifts names the liked paper most like it. For a
query q (the likes' mean, or one disliked paper) and paper p, against the day's background
of q (the mean and spread of its similarity over the day's papers):

    sim(q, p)   = q . x_p
    z(q, p)     = (sim(q, p) - mean_p sim(q, p)) / std_p sim(q, p)   (over the day's papers)
    lift(q, p)  = clip((z - like_background) / like_gain, 0, 1)
    like(p)     = like_weight * lift(mean of the liked queries, p)   (what they share)
    dislike(p)  = dislike_weight * max_d lift(q_d, p)     (the nearest disliked paper)
    s(p)        = like(p) - dislike(p), at most `like_max_papers` positive ones a profile

`s` joins the profile's noisy OR like a keyword of weight 1 (`score`):

    1 - relevance = prod_k (1 - s_k) ** w_k  *  (1 - s)

so a like lifts a paper no keyword reaches to at most `like_weight` (it must still pass
the day's cut-off: the papers it admits stand above the day's background, and there are at
most `like_max_papers` of them), and a dislike multiplies what a paper misses by at most
(1 + dislike_weight): a strong keyword match (relevance 0.9 misses 0.1) loses little, a
weak one falls under the cut. The rated papers themselves never come back (`rank` adds
them to what the profile must not get).

With the semantic layer on (the day's papers have vectors, `Prepared.dense`), sim and z
above are words and meaning together: z is `alike.fused_z`, the tf-idf z and the cosine
z of the papers' sentence embeddings mixed with weight `like_dense` and standardised
again, so a like also lifts papers that say the same thing in other words. Without it
(or `like_dense` = 0) z is the words' alone, as above.

Pure, like the rest of `rank`: ratings are given (papers with their kept terms and their
stored vectors, which count where the paper is not among the day's), nothing is read. Readers
without ratings cost nothing: the vectors are built the first time a ranking call has a
rated profile, once per `Prepared`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from digest.model import RATINGS_FIELD, DigestItem, Keyword, Match, Paper, Profile
from digest.rank import packed
from digest.rank.alike import (
    Meaning,
    VectorMemo,
    Vectors,
    hashed,
    lift,
    queries,
    similarities,
    top_per_row,
    vectors,
)
from digest.rank.analyzer import Analyzer
from digest.rank.dense import DenseDay
from digest.rank.query import compile_keyword
from digest.rank.score import Compiled
from digest.rank.settings import RankSettings


class Day(Protocol):
    """What `augment` reads of a `ranker.Prepared` (the day's papers, indexed)."""

    @property
    def papers(self) -> Sequence[Paper]: ...
    @property
    def analyzer(self) -> Analyzer: ...
    @property
    def settings(self) -> RankSettings: ...
    @property
    def column(self) -> Mapping[str, int]: ...
    @property
    def vectors(self) -> VectorMemo | None: ...
    @property
    def dense(self) -> DenseDay | None: ...


@dataclass(frozen=True, slots=True)
class Rated:
    """One paper a reader rated, for the profile it counts for."""

    paper: Paper
    vote: int  #: +1 "more like this", -1 "not for me"
    #: The paper's kept terms (`terms.encode`, as the store keeps them); None: analysed.
    terms: bytes | None = None
    #: Its stored vector (`dense.encode_vector`), for the semantic layer; None: none was
    #: read. A paper of the day takes its row of the day's vectors before this.
    vector: bytes | None = None


@dataclass(frozen=True, slots=True)
class Taste:
    """What the ratings of some profiles say about the day's papers."""

    #: rated profile r x papers: s(p) in (-1, 1), like minus dislike (`module docstring`)
    scores: sp.csr_matrix
    #: per rated profile r: paper column -> the title of the liked paper most like it,
    #: for the papers its likes lifted
    lifted: list[dict[int, str]]


def taste(
    vectors: Vectors,
    ratings: Sequence[Sequence[Rated]],
    column: Mapping[str, int],
    analyzer: Analyzer,
    settings: RankSettings,
    dense: DenseDay | None = None,
) -> Taste:
    """Each rated profile's s(p) over the vectors' papers (see the module docstring):
    likes as the mean of their queries (a centroid: what the liked papers share), each
    dislike on its own (the nearest one counts: "not for me" is about that paper). With
    `dense` (the semantic layer's vectors of the same papers) and `like_dense` > 0, how
    alike is words and meaning together (`alike.fused_z`)."""
    n_papers = vectors.rows.shape[0]
    flat = [r for rs in ratings for r in rs]
    owner = np.repeat(np.arange(len(ratings)), [len(rs) for rs in ratings])
    votes = np.array([r.vote for r in flat], np.int64)
    among = [r.paper.id in column for r in flat]
    q = queries(vectors, flat, analyzer, settings, among)
    likes = np.flatnonzero(votes > 0)
    dislikes = np.flatnonzero(votes < 0)
    n = len(ratings)
    # centroid of each profile's likes: mean of its like queries
    n_likes = np.bincount(owner[likes], minlength=n).astype(np.float32)
    mean = sp.csr_matrix(
        (1.0 / n_likes[owner[likes]], (owner[likes], likes)), shape=(n, len(flat)), dtype=np.float32
    )
    # the rated papers among the day's are left out (they never come back), also from
    # the background they would raise (a paper is most like itself)
    cols = [column.get(r.paper.id, -1) for r in flat]
    own = [(o, c) for o, c in zip(owner.tolist(), cols, strict=True) if c >= 0]
    rated_cols = sp.csr_matrix(
        (np.ones(len(own), np.float32), ([o for o, _ in own], [c for _, c in own])),
        shape=(n, n_papers),
    )
    rated_cols.data[:] = 1.0

    def unrated(sims: sp.csr_matrix, owners: np.ndarray) -> sp.csr_matrix:
        return (sims - sims.multiply(rated_cols[owners])).tocsr()

    words_like = unrated(similarities(vectors, (mean @ q).tocsr()), np.arange(n))
    words_dis = unrated(similarities(vectors, q[dislikes]), owner[dislikes])
    meaning = Meaning.of(dense, flat, column, rated_cols, settings)
    if meaning is None:
        like = lift(words_like, settings, n_papers)
        dis = lift(words_dis, settings, n_papers)
    else:
        # each profile's liked papers that have a vector: their centroid is its query
        with_vector = likes[meaning.has[likes]]
        liked = sp.csr_matrix(
            (np.ones(len(with_vector), np.float32), (owner[with_vector], with_vector)),
            shape=(n, len(flat)),
        )
        centroids = np.asarray(liked @ meaning.rated)
        has_centroid = np.bincount(owner[with_vector], minlength=n) > 0
        like = meaning.lift(words_like, centroids, has_centroid, np.arange(n))
        dis = meaning.lift(
            words_dis, meaning.rated[dislikes], meaning.has[dislikes], owner[dislikes]
        )
    like = top_per_row(like, settings.like_max_papers)
    like.data *= settings.like_weight
    dis = _max_by_owner(dis, owner[dislikes], n, n_papers)
    dis.data *= settings.dislike_weight
    scores = (like - dis).tocsr()
    scores.eliminate_zeros()
    lifted: list[dict[int, str]] = [{} for _ in ratings]
    if like.nnz:
        each = similarities(vectors, q[likes])
        if meaning is not None:  # the liked paper nearest by words and meaning
            each = meaning.nearest(unrated(each, owner[likes]), likes, owner[likes], like)
        rows = np.repeat(np.arange(n), np.diff(like.indptr))
        for r, col in zip(rows.tolist(), like.indices.tolist(), strict=True):
            mine = likes[owner[likes] == r]
            sims = each[np.searchsorted(likes, mine), col].toarray().ravel()
            lifted[r][col] = flat[int(mine[int(np.argmax(sims))])].paper.title
    return Taste(scores, lifted)


def _max_by_owner(m: sp.csr_matrix, owner: np.ndarray, n: int, n_papers: int) -> sp.csr_matrix:
    """n x papers: for each owner, the largest entry of its rows of `m` in each column."""
    coo = m.tocoo()
    rows = owner[coo.row] if len(owner) else coo.row
    if not len(rows):
        return sp.csr_matrix((n, n_papers), dtype=np.float32)
    key = rows.astype(np.int64) * n_papers + coo.col
    order = np.lexsort((-coo.data, key))
    key, data = key[order], coo.data[order]
    first = np.r_[True, key[1:] != key[:-1]]
    key, data = key[first], data[first]
    return sp.csr_matrix(
        (data, (key // n_papers, key % n_papers)), shape=(n, n_papers), dtype=np.float32
    )


@dataclass(frozen=True, slots=True)
class Learned:
    """A batch's keyword matrices with one extra plan per rated profile (its taste)."""

    compiled: Compiled
    scores: sp.csr_matrix
    vetoes: sp.csr_matrix
    rated: dict[int, int]  #: profile -> its row of `taste`
    taste: Taste
    ratings: Sequence[Sequence[Rated]]

    def exclude_ids(
        self, given: Sequence[Collection[str]] | None, n_profiles: int
    ) -> list[Collection[str]]:
        """`given` with each rated profile's rated papers added: they never come back."""
        out: list[Collection[str]] = list(given) if given is not None else [()] * n_profiles
        for i in self.rated:
            out[i] = {*out[i], *(r.paper.id for r in self.ratings[i])}
        return out

    def explain(
        self, items: list[tuple[DigestItem, ...]], column: Mapping[str, int]
    ) -> list[tuple[DigestItem, ...]]:
        """The items with a ratings "match" (`RATINGS_FIELD`, the liked paper's title as
        its keyword) where the profile's likes lifted the paper: the why-line says so."""
        out = list(items)
        for i, r in self.rated.items():
            lifted = self.taste.lifted[r]
            if not lifted:
                continue
            out[i] = tuple(
                replace(item, matches=(*item.matches, Match(title, (RATINGS_FIELD,))))
                if (title := lifted.get(column[item.paper.id])) is not None
                else item
                for item in items[i]
            )
        return out


def augment(
    prepared: Day,
    compiled: Compiled,
    scores: sp.csr_matrix,
    vetoes: sp.csr_matrix,
    ratings: Sequence[Sequence[Rated]],
) -> Learned | None:
    """The rated profiles' tastes as one more plan each (weight 1, no exclusions, no
    keyword of theirs), in the matrices `select.select` reads; None when no profile has a
    rating (then nothing is built: readers without ratings cost nothing)."""
    rated = {i: r for r, i in enumerate(i for i, rs in enumerate(ratings) if rs)}
    if not rated:
        return None
    memo = prepared.vectors if prepared.vectors is not None else VectorMemo(None)
    vec = vectors(memo, prepared.papers, prepared.analyzer, prepared.settings)
    found = taste(
        vec,
        [ratings[i] for i in rated],
        prepared.column,
        prepared.analyzer,
        prepared.settings,
        prepared.dense,
    )
    n_plans, n_profiles = len(compiled.plans), compiled.weights.shape[0]
    extra = sp.csr_matrix(
        (np.ones(len(rated), np.float32), (list(rated), [n_plans + r for r in rated.values()])),
        shape=(n_profiles, n_plans + len(rated)),
    )
    widen = sp.csr_matrix((n_profiles, len(rated)), dtype=np.float32)
    learned = replace(
        compiled,
        plans=[*compiled.plans, *([None] * len(rated))],
        weights=(sp.hstack([compiled.weights, widen]) + extra).tocsr(),
        excludes=sp.hstack([compiled.excludes, widen]).tocsr(),
    )
    no_vetoes = sp.csr_matrix((len(rated), vetoes.shape[1]), dtype=np.float32)
    return Learned(
        learned,
        sp.vstack([scores, found.scores]).tocsr(),
        sp.vstack([vetoes, no_vetoes]).tocsr(),
        rated,
        found,
        ratings,
    )


def assign(
    profiles: Sequence[Profile], rated: Sequence[Rated], analyzer: Analyzer, settings: RankSettings
) -> list[list[Rated]]:
    """Which of a reader's profiles each rating counts for (a rating does not say which
    section it was given in): the profiles whose keywords the rated paper has the most
    features of; all of them when it has none of any (and the only one, for one)."""
    if len(profiles) <= 1:
        return [list(rated) for _ in profiles]
    wanted = [_keyword_hashes(p.keywords, analyzer, settings) for p in profiles]
    out: list[list[Rated]] = [[] for _ in profiles]
    for r in rated:
        hashes, _, _ = hashed(r.paper, r.terms, analyzer)
        have = [int(np.isin(w, hashes).sum()) for w in wanted]
        best = max(have)
        for i, n in enumerate(have):
            if n == best:
                out[i].append(r)
    return out


def _keyword_hashes(
    keywords: Sequence[Keyword], analyzer: Analyzer, settings: RankSettings
) -> np.ndarray:
    features: set[str] = set()
    for kw in keywords:
        plan = compile_keyword(Keyword(kw.text, kw.phrase), analyzer, settings.exact_share)
        if plan is not None:
            features |= plan.index_features()
    return np.fromiter((packed.feature_hash(f) for f in features), np.uint64, len(features))
