"""Which stored papers a ranking reads, with the analysed text ingest kept for them.

`rank`, `preview`, `run`'s digest and `serve`'s preview rank a window of what ARRIVED in
the store (plan.py's one notion of "new"): by default what a reader's first digest would
hold, so their cost is the window's, not the store's. `KeptTermsRanker` is `rank.rank`
reading the kept terms, for the archive (its workers open the store themselves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from digest.config import Config
from digest.model import DigestItem, Paper, Profile
from digest.rank import RankSettings
from digest.store import Store, open_store


@dataclass(frozen=True, slots=True)
class Window:
    """Which stored papers `rank_stored` and `preview` rank: those that ARRIVED in the store
    after `after` (the row's arrival, not the source's date: plan.py's one notion of
    "new"), or every stored paper when `after` is None."""

    after: datetime | None = None
    #: How a message names the window: "in the last day", "on or after 2025-10-16".
    label: str = "in the store"


def recent_window(now: datetime, frequency: str = "daily") -> Window:
    """What a reader's first digest at `now` would hold: the papers that arrived in the
    one period (a day, a week for weekly readers) before `now`, as `plan.due_readers`."""
    from digest.plan import PERIODS

    return Window(
        now - PERIODS[frequency], "in the last week" if frequency == "weekly" else "in the last day"
    )


def window_since(day: date) -> Window:
    """The papers that arrived on or after `day` (from 00:00 UTC)."""
    start = datetime.combine(day, time.min, UTC)
    # Stored times have microseconds: "after one tick before midnight" is "from midnight".
    return Window(start - timedelta(microseconds=1), f"on or after {day.isoformat()}")


def stored_papers(store: Store, window: Window | None = None) -> list[Paper]:
    """The stored papers in `window` (every one when None). A window reads only its own
    rows, in arrival order, as the send does: its cost is the window's, not the store's."""
    if window is None or window.after is None:
        return store.papers()
    low = store.row_arrived_by(window.after)
    return [paper for _, paper in store.arrivals(low, store.newest_paper_row())]


def kept_terms(config: Config, store: Store, papers: Sequence[Paper]) -> dict[str, bytes]:
    """The analysed text ingest kept for `papers` (`Store.paper_terms`, under this config's
    analysis), for `build_digest`: ranking reads it instead of analysing every paper."""
    from digest import rank

    return store.paper_terms([p.id for p in papers], rank.terms_key(config.synonyms or None))


@dataclass(frozen=True, slots=True)
class KeptTermsRanker:
    """`rank.rank` on the terms ingest kept (in `store_path`), indexing only the profiles'
    features: a day of the archive costs its reading, not its analysis. Picklable, so the
    archive's worker processes can take it; each call opens the store to read."""

    store_path: Path | str  #: a SQLite file or a PostgreSQL URL (`store.open_store`)

    def __call__(
        self,
        papers: Sequence[Paper],
        profiles: Sequence[Profile],
        now: datetime,
        settings: RankSettings,
        synonyms: Mapping[str, Sequence[str]] | None = None,
    ) -> list[tuple[DigestItem, ...]]:
        from digest import rank

        with open_store(self.store_path) as store:
            blobs = store.paper_terms([p.id for p in papers], rank.terms_key(synonyms or None))
        keywords = [k for p in profiles for k in (*p.keywords, *p.exclude)]
        wanted = rank.keyword_features(keywords, settings, synonyms or None)
        prepared = rank.prepare(papers, now, settings, synonyms or None, blobs, wanted)
        return [r.items for r in rank.rank_prepared(prepared, profiles)]
