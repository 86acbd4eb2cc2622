"""The related-terms table (`rank.related`) between the store and the ranker: learned
from the stored papers by `digest related`, read back for the features a ranking needs.

Learning reads the newest `LEARN_PAPERS` stored papers (their text analysed again, as
`rank.related.paper_features` reads it: a few ms a paper) and replaces the table kept
under the analysis key. Reading asks for the rows of a
ranking's own features only.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.config import Config
from digest.model import Keyword
from digest.rank.related import RelatedTerms
from digest.rank.settings import RankSettings
from digest.store import Store

#: The newest stored papers the table is learned from (a few seconds of analysis; the
#: statistics of a few thousand papers are what a digest's topics need).
LEARN_PAPERS = 5000


@dataclass(frozen=True, slots=True)
class RelatedReport:
    """What `learn_related` did."""

    papers: int  #: papers it was learned from
    features: int  #: features that have related terms
    rows: int  #: (feature, related feature) pairs kept
    cpu_seconds: float

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"related terms of {self.features} features ({self.rows} pairs) learned from"
            f" {self.papers} papers ({self.cpu_seconds:.2f} CPU-s)"
        )


def learn_related(
    config: Config, store: Store, now: datetime, limit: int = LEARN_PAPERS
) -> RelatedReport:
    """Learn the related terms of the newest `limit` stored papers and keep them under
    this config's analysis (replacing the table there was)."""
    from digest import rank
    from digest.rank.analyzer import analyzer_for
    from digest.rank.related import learn, paper_features

    start = time.process_time()
    synonyms = config.synonyms or None
    key = rank.terms_key(synonyms)
    high = store.newest_paper_row()
    papers = [p for _, p in store.arrivals(max(0, high - limit), high)]
    analyzer, memo = analyzer_for(synonyms), dict[str, bool]()
    table = learn(paper_features(p, analyzer, memo) for p in papers)
    rows = store.keep_related_terms(key, table.rows(), table.papers, now)
    return RelatedReport(table.papers, len(table.table), rows, time.process_time() - start)


def kept_related(
    store: Store,
    settings: RankSettings,
    features: Collection[str],
    synonyms: Mapping[str, Sequence[str]] | None,
) -> RelatedTerms | None:
    """The kept related terms of these features (a ranking's own: `rank.keyword_features`),
    or None when ranking reads none (`settings.uses_related`) or none are kept."""
    if not settings.uses_related or not features:
        return None
    from digest import rank

    key = rank.terms_key(synonyms)
    rows, papers = store.related_terms(key, sorted(features))
    return RelatedTerms.from_rows(rows, papers) if rows else None


def related_for(config: Config, store: Store, keywords: Iterable[Keyword]) -> RelatedTerms | None:
    """`kept_related` of the features these keywords (wanted or excluded) look up."""
    if not config.ranking.uses_related:
        return None
    from digest import rank

    synonyms = config.synonyms or None
    wanted = rank.keyword_features(list(keywords), config.ranking, synonyms)
    return kept_related(store, config.ranking, wanted, synonyms)


def related_stamp(config: Config, store: Store) -> str:
    """Which related-terms table a ranking with this config reads ("" when it reads none:
    bridges off, or no table kept). The archive's picks are cached under it
    (`publish.picks.ranking_basis`), so relearning the table ranks the days again."""
    if not config.ranking.uses_related:
        return ""
    from digest import rank

    return store.related_made(rank.terms_key(config.synonyms or None))
