"""`digest rank --explain` / `--show-below`: the ranker's audit of one profile over the
stored papers of a window (rank/whynot.py does the ranking part, purely)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from digest import rank
from digest.bridges import related_for
from digest.config import Config
from digest.model import Profile
from digest.rank.whynot import Audit, audit
from digest.store import Store
from digest.window import Window, kept_terms, kept_vectors, stored_papers


def audit_stored(
    config: Config,
    store: Store,
    profile: Profile,
    now: datetime,
    window: Window | None = None,
    sent: Collection[str] = (),
    rated: Sequence[rank.Rated] = (),
) -> Audit:
    """The audit of `profile` over the papers of `window` (default: every stored paper),
    indexed as a digest indexes them; `sent`: what the reader got before; `rated`: the
    papers they rated for this profile."""
    settings, synonyms = config.ranking, config.synonyms or None
    papers = stored_papers(store, window)
    keywords = [*profile.keywords, *profile.exclude]
    related = related_for(config, store, keywords)
    wanted = rank.keyword_features(keywords, settings, synonyms, related)
    blobs, dense = kept_terms(config, store, papers), kept_vectors(config, store, papers)
    prepared = rank.prepare(papers, now, settings, synonyms, blobs, wanted, dense, related=related)
    return audit(prepared, profile, sent, rated)
