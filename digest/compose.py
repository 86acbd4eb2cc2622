"""One digest from a list of papers and a set of profiles: rank, then sections (pure).

`digest preview`, `digest rank` and the config profiles' digest of `digest run` build
theirs here (through `pipeline`, which reads what it needs from the store first); the
daily send plans its readers' digests in `plan` against one shared index instead.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from digest.model import Digest, DigestSection, Paper, Profile

if TYPE_CHECKING:
    from digest import rank
    from digest.config import Config
    from digest.rank.dense import DenseDay
    from digest.rank.related import RelatedTerms


def build_digest(
    config: Config,
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    now: datetime,
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
    blobs: Mapping[str, bytes] | None = None,
    sent: Collection[str] = (),
    rated: Sequence[rank.Rated] = (),
    dense: DenseDay | None = None,
    related: RelatedTerms | None = None,
) -> Digest:
    """Rank `papers` for each profile and assemble the digest (pure: no I/O). `blobs`: the
    papers' analysed text as ingest kept it (`kept_terms`), so it is not analysed again;
    `sent` and `rated`: one reader's sent papers and ratings (as a send ranks them);
    `dense`: the papers' vectors for the semantic layer (`kept_vectors`; None: words alone);
    `related`: the stored papers' related terms (`bridges.related_for`; None: none)."""
    from digest import rank

    if not profiles:
        ranked = []
    else:
        settings, synonyms = config.ranking, config.synonyms or None
        keywords = [k for p in profiles for k in (*p.keywords, *p.exclude)]
        wanted = rank.keyword_features(keywords, settings, synonyms, related)  # index those
        prepared = rank.prepare(
            papers, now, settings, synonyms, blobs, wanted, dense, related=related
        )
        assigned = rank.assign_ratings(profiles, rated, prepared.analyzer, settings)
        excluded = [sent] * len(profiles) if sent else None
        ranked = rank.rank_prepared(prepared, profiles, excluded, ratings=assigned or None)
    sections = tuple(
        DigestSection(p, r.items, r.matched - len(r.items))
        for p, r in zip(profiles, ranked, strict=True)
    )
    return Digest(
        day=now.date(),
        title=title or config.digest_title,
        sections=sections,
        papers_considered=len(papers),
        notes=tuple(notes),
    )
