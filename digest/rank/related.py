"""Related terms learned from the stored papers: how a keyword is said in other words.

About half of the papers a reader misses contain no form of any of their keywords: they
say "student model mimics the teacher" where the reader typed "knowledge distillation".
The corpus itself tells which terms stand in for a keyword: over the stored papers, a
term g is related to a feature f when the papers that use g mostly use f too

    r(f, g) = papers(f and g) / (papers(g) + smoothing)      (an estimate of P(f | g))

kept when at least `min_papers` papers hold both, g is not a common word (it occurs in at
most `max_share` of the papers) and r reaches `min_weight`; a feature keeps its `top`
best. `learn` computes the table offline (`digest related`: `bridges.learn_related`),
the store keeps it (`store.related`), and ranking reads the rows of its keywords'
features only.

A keyword's related terms are those of its phrase features (for one word, the word; for
several, the words together), without the keyword's own words: a paper that has them is
already scored by them (`query.KeywordPlan.bag`). A paper matches the keyword by related
terms with

    related(k, p) = related_credit * min(1, sum_g r(f, g) * sat(g, p))

(`score.related_scores`), a lower weight than the keyword itself can reach, and the
why-line says the paper came in by related terms (`Match.fields` == ("related",)).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from digest.model import Paper
from digest.rank.analyzer import EXACT_PREFIX, STOPWORDS, Analyzer, tokenize

#: (related feature, r) pairs, best first.
Neighbours = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class RelatedTerms:
    """Each feature's related features with their weights (`learn`), and the size of the
    corpus they were learned from."""

    table: Mapping[str, Neighbours] = field(default_factory=dict)
    papers: int = 0  #: how many papers the statistics were counted over

    def __bool__(self) -> bool:
        return bool(self.table)

    def neighbours(self, anchors: Iterable[str], own: Iterable[str] = ()) -> Neighbours:
        """The related features of any of `anchors` (each once, with its best weight,
        heaviest first), leaving out `own` (the keyword's own features) and the anchors."""
        skip = set(own) | set(anchors)
        best: dict[str, float] = {}
        for f in anchors:
            for g, r in self.table.get(f, ()):
                if g not in skip and r > best.get(g, 0.0):
                    best[g] = r
        return tuple(sorted(best.items(), key=lambda gr: (-gr[1], gr[0])))

    def expand(self, features: Iterable[str]) -> set[str]:
        """Every feature related to any of `features` (what an index must also hold)."""
        return {g for f in features for g, _ in self.table.get(f, ())}

    def rows(self) -> list[tuple[str, str, float]]:
        """(feature, related feature, r) rows, for the store."""
        return [(f, g, r) for f, ns in sorted(self.table.items()) for g, r in ns]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, float]], papers: int) -> RelatedTerms:
        """The table from the store's rows (any order; each feature's kept best first)."""
        grouped: dict[str, list[tuple[str, float]]] = {}
        for f, g, r in rows:
            grouped.setdefault(f, []).append((g, float(r)))
        return cls(
            {f: tuple(sorted(ns, key=lambda gr: (-gr[1], gr[0]))) for f, ns in grouped.items()},
            papers,
        )


#: How many anchor features' co-occurrences are counted at once (bounds memory).
_BLOCK = 2048


def paper_features(paper: Paper, analyzer: Analyzer, memo: dict[str, bool]) -> set[str]:
    """The features of a paper's title and abstract that can stand for a topic: exact word
    forms left out (their stems stand for them), and so is any feature made of a function
    word ("the", "for": alone or in a pair such as "forparamet"), which says nothing of
    what a paper is about. `memo`: span text -> kept, shared across papers."""
    out: set[str] = set()
    for text in (paper.title, paper.abstract or ""):
        for f, start, end in analyzer.feature_spans(text):
            if f.startswith(EXACT_PREFIX) or f in out:
                continue
            span = text[start:end]
            keep = memo.get(span)
            if keep is None:
                keep = memo[span] = not any(t.word in STOPWORDS for t in tokenize(span))
            if keep:
                out.add(f)
    return out


def learn(
    docs: Iterable[Collection[str]],
    min_papers: int = 3,
    max_share: float = 0.1,
    min_weight: float = 0.3,
    top: int = 20,
    smoothing: float = 1.0,
) -> RelatedTerms:
    """The related-terms table of a corpus (pure): `docs` holds each paper's features
    (`paper_features`), each counted once a paper. A feature is an anchor when
    `min_papers` papers hold it; its related terms are as the module docstring says.
    Cost: the co-occurring pairs of the papers' features, in blocks of anchors (some
    seconds for 5,000 papers)."""
    docs = [set(d) for d in docs]
    n = len(docs)
    if not n:
        return RelatedTerms({}, 0)
    df: dict[str, int] = {}
    for doc in docs:
        for f in doc:
            df[f] = df.get(f, 0) + 1
    names = sorted(f for f, c in df.items() if c >= min_papers)
    if not names:
        return RelatedTerms({}, n)
    column = {f: i for i, f in enumerate(names)}
    rows: list[int] = []
    cols: list[int] = []
    for j, doc in enumerate(docs):
        hit = [column[f] for f in doc if f in column]
        rows += [j] * len(hit)
        cols += hit
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(names))).tocsc()
    counts = np.asarray([df[f] for f in names], dtype=np.float64)
    candidate = counts <= max(max_share * n, min_papers)
    xt = x.T.tocsr()
    xc = x[:, np.flatnonzero(candidate)].tocsc()
    cand_index = np.flatnonzero(candidate)
    cand_df = counts[cand_index]
    table: dict[str, Neighbours] = {}
    for lo in range(0, len(names), _BLOCK):
        hi = min(lo + _BLOCK, len(names))
        both = (xt[lo:hi] @ xc).tocsr()  # anchors x candidates: papers holding both
        for a in range(hi - lo):
            start, end = both.indptr[a], both.indptr[a + 1]
            if start == end:
                continue
            together = both.data[start:end]
            which = both.indices[start:end]
            weight = together / (cand_df[which] + smoothing)
            ok = (together >= min_papers) & (weight >= min_weight) & (cand_index[which] != lo + a)
            if not ok.any():
                continue
            which, weight = which[ok], weight[ok]
            order = np.lexsort((cand_index[which], -weight))[:top]
            table[names[lo + a]] = tuple(
                (names[int(cand_index[which[k]])], round(float(weight[k]), 4)) for k in order
            )
    return RelatedTerms(table, n)
