"""How alike rated papers are to the day's papers: by their words (tf-idf), and by
meaning when the semantic layer gives the papers vectors (`rank.dense`). `learn` reads
these as a reader's taste.

    build_vectors(...)   the day's papers as unit tf-idf rows over all their features
    queries(...)         rated papers as "more like this" queries over those rows
    similarities(...)    query rows x papers, lexical
    rated_vectors(...)   rated papers' dense vectors (a day paper's row, else its stored one)
    fused_z(...)         both as one z-score per paper against the row's day

Words and meaning meet as z-scores, each against the day's papers (a cosine of tf-idf
rows and one of sentence embeddings live on different scales; "far above this query's
usual" is comparable): with w = `like_dense`,

    z(q, p) = zscore_day((1 - w) * z_words(q, p) + w * z_meaning(q, p))

where the query and the paper both have a vector, z_words(q, p) elsewhere. The mix is
standardised again so `like_background` and `like_gain` keep their meaning (standard
deviations above the day) whatever w is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from digest.model import Paper
from digest.rank import packed
from digest.rank.analyzer import Analyzer
from digest.rank.settings import RankSettings
from digest.rank.terms import analyze, decode


class DayVectors(Protocol):
    """What `Meaning` reads of the semantic layer's day (`dense.DenseDay`)."""

    @property
    def vectors(self) -> np.ndarray: ...
    @property
    def present(self) -> np.ndarray: ...


class RatedPaper(Protocol):
    """What a rated paper brings (`learn.Rated`)."""

    @property
    def paper(self) -> Paper: ...
    @property
    def terms(self) -> bytes | None: ...
    @property
    def vector(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Vectors:
    """Papers as unit-length tf-idf rows over hashed features (`packed.feature_hash`)."""

    keys: np.ndarray  #: sorted uint64 feature hashes: column j is keys[j]
    idf: np.ndarray  #: per column
    df: np.ndarray  #: per column: how many of the papers have the feature
    rows: sp.csr_matrix  #: papers x columns, float32, each row of unit length
    unseen_idf: float  #: the idf of a feature none of the papers has


@dataclass
class VectorMemo:
    """What `vectors` needs to build the day's vectors when first asked, and then them."""

    blobs: Mapping[str, bytes] | None
    built: Vectors | None = field(default=None)


def hashed(
    paper: Paper, blob: bytes | None, analyzer: Analyzer
) -> tuple[np.ndarray, np.ndarray, int]:
    """A paper's features as (hashes, counts, how many are the title's): read from its
    packed blob, else from a JSON one (hashed here), else analysed."""
    got = packed.hashed_terms(paper, blob)
    if got is not None:
        return got
    terms = decode(paper, blob) if blob is not None else None
    if terms is None:
        terms = analyze(paper, analyzer)
    names = (*terms.title, *terms.abstract)
    hashes = np.fromiter((packed.feature_hash(f) for f in names), np.uint64, count=len(names))
    counts = np.asarray((*terms.title_counts, *terms.abstract_counts), np.float32)
    return hashes, counts, len(terms.title)


def _tf(
    found: Sequence[tuple[np.ndarray, np.ndarray, int]], settings: RankSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, hash, weighted term frequency) of every feature of `found`, a title's
    counting `title_weight` times, repeats of a hash in one paper summed later."""
    rows = np.repeat(np.arange(len(found)), [len(h) for h, _, _ in found])
    hashes = np.concatenate([h for h, _, _ in found]) if found else np.zeros(0, np.uint64)
    tf = []
    for h, counts, nt in found:
        weight = np.full(len(h), settings.abstract_weight, np.float32)
        weight[:nt] = settings.title_weight
        tf.append(counts * weight)
    return rows, hashes, np.concatenate(tf) if tf else np.zeros(0, np.float32)


def build_vectors(
    papers: Sequence[Paper],
    blobs: Mapping[str, bytes] | None,
    analyzer: Analyzer,
    settings: RankSettings,
) -> Vectors:
    """The papers' unit tf-idf rows: (1 + log tf) x idf, idf = 1 + log((1 + n) / (1 + df))."""
    found = [hashed(p, blobs.get(p.id) if blobs else None, analyzer) for p in papers]
    rows, hashes, tf = _tf(found, settings)
    keys, cols = np.unique(hashes, return_inverse=True)
    m = sp.csr_matrix((tf, (rows, cols)), shape=(len(papers), len(keys)), dtype=np.float32)
    m.sum_duplicates()
    df = np.bincount(m.indices, minlength=len(keys)).astype(np.float64)
    n = len(papers)
    idf = (1.0 + np.log((1.0 + n) / (1.0 + df))).astype(np.float32)
    m.data = (1.0 + np.log(np.maximum(m.data, 1.0))) * idf[m.indices]
    return Vectors(keys, idf, df.astype(np.int64), unit(m), float(1.0 + np.log(1.0 + n)))


def unit(m: sp.csr_matrix) -> sp.csr_matrix:
    """`m` with each non-empty row scaled to unit length."""
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    out = sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ m, dtype=np.float32)
    return out


def queries(
    vectors: Vectors,
    rated: Sequence[RatedPaper],
    analyzer: Analyzer,
    settings: RankSettings,
    among: Sequence[bool] | None = None,
) -> sp.csr_matrix:
    """Each rated paper as a "more like this" query over the vectors' columns: its
    `query_terms` heaviest tf-idf features that some other paper of the day has, unit
    length (the norm counts its other features too, so a paper like no other scores low).
    `among[i]`: rated paper i is one of the vectors' papers (its own features do not
    count as shared with the day)."""
    found = [hashed(r.paper, r.terms, analyzer) for r in rated]
    rows, hashes, tf = _tf(found, settings)
    at = np.minimum(np.searchsorted(vectors.keys, hashes), max(len(vectors.keys) - 1, 0))
    known = vectors.keys[at] == hashes if len(vectors.keys) else np.zeros(len(hashes), bool)
    # one entry per (row, hash): a feature written in the title and the abstract is one
    m = sp.csr_matrix(
        (tf, (rows, np.where(known, at, len(vectors.keys)))),
        shape=(len(rated), len(vectors.keys) + 1),
        dtype=np.float32,
    )
    m.sum_duplicates()
    idf = np.append(vectors.idf, np.float32(vectors.unseen_idf))
    m.data = (1.0 + np.log(np.maximum(m.data, 1.0))) * idf[m.indices]
    m = unit(m)
    m = m[:, : len(vectors.keys)].tocsr()  # a feature the day lacks can match nothing
    if among is not None:  # a feature only the rated paper itself has matches nothing else
        own = np.repeat(np.asarray(among, bool), np.diff(m.indptr))
        m.data[own & (vectors.df[m.indices] < 2)] = 0.0
        m.eliminate_zeros()
    return top_per_row(m, settings.query_terms)


def top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """`m` with only the k largest entries of each row (ties: the first columns)."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    starts = m.indptr[:-1][rows[order]]
    keep = order[(np.arange(len(order)) - starts) < k]
    out = sp.csr_matrix(
        (m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape, dtype=np.float32
    )
    return out


def vectors(
    memo: VectorMemo, papers: Sequence[Paper], analyzer: Analyzer, settings: RankSettings
) -> Vectors:
    """The papers' vectors, built on first use and kept in `memo` (one per `Prepared`)."""
    if memo.built is None:
        memo.built = build_vectors(papers, memo.blobs, analyzer, settings)
    return memo.built


def similarities(vectors: Vectors, query_rows: sp.csr_matrix) -> sp.csr_matrix:
    """query rows x papers: how alike each query is to each paper by their words."""
    return sp.csr_matrix(query_rows @ vectors.rows.T, dtype=np.float32)


def rated_vectors(
    day_vectors: np.ndarray,
    day_present: np.ndarray,
    rated: Sequence[RatedPaper],
    column: Mapping[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The rated papers' unit vectors (rated x DIM float32) and which have one: a paper
    of the day takes its row of the day's vectors, another its stored vector (float16, as
    `dense.encode_vector` keeps it); zeros where neither is there."""
    dim = day_vectors.shape[1]
    out = np.zeros((len(rated), dim), np.float32)
    has = np.zeros(len(rated), bool)
    for i, r in enumerate(rated):
        j = column.get(r.paper.id)
        if j is not None and day_present[j]:
            out[i], has[i] = day_vectors[j], True
        elif r.vector is not None and len(r.vector) == 2 * dim:
            out[i], has[i] = np.frombuffer(r.vector, "<f2"), True
    return out, has


def z_rows(sims: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Each row of `sims` as z-scores against the row's background (`background`, bool,
    the same shape or broadcastable: the papers that count), float32."""
    n = np.maximum(background.sum(axis=1, keepdims=True), 1)
    mean = np.where(background, sims, 0.0).sum(axis=1, keepdims=True) / n
    var = np.where(background, (sims - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / n
    return ((sims - mean) / np.maximum(np.sqrt(var), 1e-6)).astype(np.float32)


def fused_z(
    lexical: sp.csr_matrix,
    dense: np.ndarray,
    has: np.ndarray,
    present: np.ndarray,
    rated: np.ndarray,
    weight: float,
) -> np.ndarray:
    """rows x papers: how far each paper stands above the row's day by words and meaning
    (module docstring). `lexical`: the rows' tf-idf similarities; `dense`: their cosines
    (rows x papers); `has[r]`: row r's query has a vector; `present[p]`: paper p has one;
    `rated[r, p]`: p is one of row r's reader's rated papers (left out of the background:
    a paper is most like itself).

    Over the papers with a vector, the words' z and the meaning's are each standardised
    over those papers, mixed, and the mix standardised again; a paper without one (not
    embedded yet) keeps its words' z over the whole day. Both are then "standard
    deviations above this row's day", the scale `like_background` and `like_gain` read."""
    background = ~rated
    z = z_rows(lexical.toarray(), background)
    if weight <= 0 or not has.any() or not present.any():
        return z
    both = background & present[None, :]
    mixed = z_rows((1.0 - weight) * z_rows(z, both) + weight * z_rows(dense, both), both)
    return np.where(has[:, None] & present[None, :], mixed, z)


def lift(sims: sp.csr_matrix, settings: RankSettings, n_papers: int) -> sp.csr_matrix:
    """How far each entry of a row of (words') similarities stands above the row's
    background, in [0, 1]: 0 up to `like_background` standard deviations above the row's
    mean over the day's papers (zeros count), rising to 1 at `like_gain` deviations more."""
    total = np.asarray(sims.sum(axis=1)).ravel()
    squares = np.asarray(sims.multiply(sims).sum(axis=1)).ravel()
    n = max(n_papers, 1)
    mean = total / n
    std = np.maximum(np.sqrt(np.maximum(squares / n - mean**2, 0.0)), 1e-6)
    bg = mean + settings.like_background * std
    span = np.maximum(settings.like_gain, 1e-6) * std
    rows = np.repeat(np.arange(sims.shape[0]), np.diff(sims.indptr))
    out = sims.copy()
    out.data = np.clip((out.data - bg[rows]) / span[rows], 0.0, 1.0).astype(np.float32)
    out.eliminate_zeros()
    return out


#: Rows of a taste made dense at once (`Meaning`): bounds its memory at about
#: CHUNK x papers x 4 bytes a few times over, whatever the page of readers.
CHUNK = 256


@dataclass(frozen=True, slots=True)
class Meaning:
    """The semantic layer's side of a taste (`learn.taste`): the day's vectors and the
    rated papers', and how alike a query row is by words and meaning (`fused_z`)."""

    vectors: np.ndarray  #: the day's papers x DIM (zeros where absent)
    present: np.ndarray  #: the day's paper p has a vector
    rated: np.ndarray  #: rated paper i's unit vector (zeros where it has none)
    has: np.ndarray  #: rated paper i has a vector
    rated_cols: np.ndarray  #: bool, rated profile x papers: the profile's rated papers
    settings: RankSettings

    @staticmethod
    def of(
        day: DayVectors | None,
        flat: Sequence[RatedPaper],
        column: Mapping[str, int],
        rated_cols: sp.csr_matrix,
        settings: RankSettings,
    ) -> Meaning | None:
        """None unless the layer is on for these ratings (vectors, `like_dense` > 0)."""
        if day is None or settings.like_dense <= 0 or not day.present.any():
            return None
        vecs, has = rated_vectors(day.vectors, day.present, flat, column)
        if not has.any():
            return None
        return Meaning(day.vectors, day.present, vecs, has, rated_cols.toarray() > 0, settings)

    def fused(
        self, words: sp.csr_matrix, vecs: np.ndarray, has: np.ndarray, owners: np.ndarray
    ) -> np.ndarray:
        """`fused_z` of query rows: their words' similarities, their vectors (`has`: which
        have one) and the rated profile each belongs to."""
        cosines = vecs @ self.vectors.T
        rated = self.rated_cols[owners]
        return fused_z(words, cosines, has, self.present, rated, self.settings.like_dense)

    def lift(
        self, words: sp.csr_matrix, vecs: np.ndarray, has: np.ndarray, owners: np.ndarray
    ) -> sp.csr_matrix:
        """`lift` on the fused z-scores, clip((z - like_background) / like_gain, 0, 1) with
        0 at each row's rated papers; a row whose query has no vector is the words' `lift`
        exactly. CHUNK rows at a time."""
        s, n_papers = self.settings, len(self.present)
        plain = lift(words, s, n_papers)
        parts = []
        for lo in range(0, words.shape[0], CHUNK):
            at = slice(lo, lo + CHUNK)
            if not has[at].any():
                parts.append(plain[at])
                continue
            z = self.fused(words[at], vecs[at], has[at], owners[at])
            out = np.clip((z - s.like_background) / max(s.like_gain, 1e-6), 0.0, 1.0)
            out[self.rated_cols[owners[at]]] = 0.0
            out[~has[at]] = plain[at][~has[at]].toarray()
            parts.append(sp.csr_matrix(out.astype(np.float32)))
        if not parts:
            return sp.csr_matrix((0, n_papers), dtype=np.float32)
        return sp.vstack(parts, format="csr", dtype=np.float32)

    def nearest(
        self, words: sp.csr_matrix, queries: np.ndarray, owners: np.ndarray, lifted: sp.csr_matrix
    ) -> sp.csr_matrix:
        """Rated papers `queries` x papers: each one's fused z at the papers its profile's
        likes lifted (`lifted`, profile x papers), nothing elsewhere: which liked paper a
        lifted one is most like. CHUNK rows at a time."""
        parts = []
        for lo in range(0, words.shape[0], CHUNK):
            at = slice(lo, lo + CHUNK)
            mine = queries[at]
            z = self.fused(words[at], self.rated[mine], self.has[mine], owners[at])
            wanted = lifted[owners[at]].toarray() > 0
            parts.append(sp.csr_matrix(np.where(wanted, z, 0.0).astype(np.float32)))
        if not parts:
            return sp.csr_matrix((0, len(self.present)), dtype=np.float32)
        return sp.vstack(parts, format="csr", dtype=np.float32)
