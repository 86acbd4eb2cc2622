"""The day's papers as sparse feature x paper matrices, with BM25F term saturation.

For feature t and paper p, with term frequencies tf_title and tf_abstract:

    tf'(t, p) = title_weight * tf_title / (1 - b + b * len_title / avg_title)
              + abstract_weight * tf_abstract / (1 - b + b * len_abstract / avg_abstract)
    sat(t, p) = tf' / (k1 + tf')                     (in [0, 1))

`sat` is BM25F's per-term score divided by its maximum attainable value idf * (k1 + 1);
the IDF is kept apart (`idf`) and used to weigh the words inside a multi-word keyword.
Dividing each keyword by its own maximum is what makes scores comparable across profiles.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from digest.model import Paper
from digest.rank.analyzer import Analyzer
from digest.rank.fork import can_fork, fork_map
from digest.rank.settings import RankSettings
from digest.rank.terms import PaperTerms, terms_for


@dataclass(frozen=True, slots=True)
class PaperIndex:
    """Features of the papers, as matrices with one row per feature and a column per paper."""

    vocab: dict[str, int]  #: feature -> row
    sat: sp.csr_matrix  #: BM25F saturation, float32 in [0, 1)
    in_title: sp.csr_matrix  #: 1.0 where the feature occurs in the title
    in_abstract: sp.csr_matrix  #: 1.0 where the feature occurs in the abstract
    idf: np.ndarray  #: BM25 idf per feature (papers containing it in either field)
    n_papers: int


def _field_matrix(
    rows: list[int], counts: list[int], lengths: list[int], n_features: int, n_papers: int
) -> sp.csr_matrix:
    cols = np.repeat(np.arange(n_papers, dtype=np.int32), np.asarray(lengths, dtype=np.int64))
    data = np.asarray(counts, dtype=np.float32)
    m = sp.coo_matrix(
        (data, (np.asarray(rows, dtype=np.int32), cols)), shape=(n_features, n_papers)
    ).tocsr()
    m.sum_duplicates()
    return m


def _only(terms: PaperTerms, wanted: frozenset[str]) -> PaperTerms:
    """`terms` with only the wanted features (word counts unchanged), in feature order.

    The few wanted features of a paper are found by set intersection (in C), not by
    looking at each of its hundreds of features in Python; sorted, so an index comes out
    the same in every process whatever the hash seed.
    """
    title = sorted(wanted.intersection(terms.title))
    abstract = sorted(wanted.intersection(terms.abstract))
    if tuple(title) == terms.title and tuple(abstract) == terms.abstract:
        return terms  # already narrowed and in order: most papers of a wanted index
    t_counts = dict(zip(terms.title, terms.title_counts, strict=True)) if title else {}
    a_counts = dict(zip(terms.abstract, terms.abstract_counts, strict=True)) if abstract else {}
    return PaperTerms(
        tuple(title),
        tuple(t_counts[f] for f in title),
        terms.title_words,
        tuple(abstract),
        tuple(a_counts[f] for f in abstract),
        terms.abstract_words,
    )


def build_index(
    papers: Sequence[Paper],
    analyzer: Analyzer,
    settings: RankSettings,
    terms: Iterable[PaperTerms] | None = None,
    wanted: Collection[str] | None = None,
    workers: int = 1,
) -> PaperIndex:
    """Build the matrices from each paper's terms (the j-th for `papers[j]`, as ingest
    kept them), analysing the papers when no terms are given.

    `wanted`: the only features the index needs to hold (those of the profiles that will
    be ranked on it); the others are left out, which changes no score (a feature's idf
    and saturation depend on the papers alone) and saves most of the work.
    `workers` > 1 analyses the papers (when no terms are given) in that many processes
    (`fork.fork_map`), a contiguous share each, their terms taken in paper order.
    """
    if terms is None and workers > 1 and can_fork():
        size = -(-len(papers) // workers)
        shares = [papers[k : k + size] for k in range(0, len(papers), size)]
        analysed = fork_map(lambda share: list(terms_for(share, analyzer)), shares, workers)
        terms = itertools.chain.from_iterable(analysed)
    elif terms is None:
        terms = terms_for(papers, analyzer)
    if wanted is not None:
        features = frozenset(wanted)
        terms = (_only(t, features) for t in terms)
    vocab: dict[str, int] = {}
    rows_t: list[int] = []
    rows_a: list[int] = []
    tf_t_data: list[int] = []
    tf_a_data: list[int] = []
    count_t: list[int] = []  # features per paper (for column indices)
    count_a: list[int] = []
    words_t = np.zeros(len(papers), dtype=np.float64)
    words_a = np.zeros(len(papers), dtype=np.float64)
    setdefault = vocab.setdefault
    for j, got in enumerate(terms):
        rows_t.extend([setdefault(f, len(vocab)) for f in got.title])
        tf_t_data.extend(got.title_counts)
        count_t.append(len(got.title))
        words_t[j] = got.title_words
        rows_a.extend([setdefault(f, len(vocab)) for f in got.abstract])
        tf_a_data.extend(got.abstract_counts)
        count_a.append(len(got.abstract))
        words_a[j] = got.abstract_words
    n_f, n_p = len(vocab), len(papers)
    tf_t = _field_matrix(rows_t, tf_t_data, count_t, n_f, n_p)
    tf_a = _field_matrix(rows_a, tf_a_data, count_a, n_f, n_p)

    def norm(lengths: np.ndarray, weight: float) -> np.ndarray:
        avg = lengths.mean() if n_p and lengths.mean() > 0 else 1.0
        return (weight / (1.0 - settings.b + settings.b * lengths / avg)).astype(np.float32)

    tfw = tf_t @ sp.diags(norm(words_t, settings.title_weight)) + tf_a @ sp.diags(
        norm(words_a, settings.abstract_weight)
    )
    tfw = sp.csr_matrix(tfw, dtype=np.float32)
    tfw.data = tfw.data / (settings.k1 + tfw.data)
    tfw.eliminate_zeros()
    df = np.diff(tfw.indptr).astype(np.float64)
    idf = np.log1p((n_p - df + 0.5) / (df + 0.5))
    in_t = tf_t.copy()
    in_t.data[:] = 1.0
    in_a = tf_a.copy()
    in_a.data[:] = 1.0
    return PaperIndex(vocab, tfw, in_t, in_a, idf, n_p)
