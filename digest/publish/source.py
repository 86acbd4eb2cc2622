"""Which papers a publish reads: all of them, or only the days that may have changed.

A year at 2,000 papers a day is 730,000 papers; reading, hashing and grouping all of them
costs more than a new day is worth. So `publish` takes either a plain sequence of papers
(all of it read every time, as a `PaperList`: tests and small callers) or a
`PaperSource`, which the store already is, and then reads only the days from `since` on,
where `since` is the earliest of

- the day of any paper that arrived (a new store row) since the last publish;
- the day after the last publish's "today", when `now` has moved on (days after the
  old today were not published then);
- the last `REREAD_DAYS` days up to today: a paper's upvotes and details keep changing
  for a few days after it is first listed, and merges into old rows add no row.

Older days keep what the last publish made of them (picks, pages). A change to a paper
older than that window (a merge into an old row) shows when its day is read again: by
`publish(..., full=True)`, or whenever the ranking basis or the templates change, or the
build state is lost, since each of those reads every day.

`plan_reading` only decides which days those are (`paper_days`); the papers themselves
are read a month at a time (`papers_between`) by `days.build_days`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from digest.model import Paper
from digest.publish.manifest import Manifest
from digest.publish.names import day_of

#: Days up to today that every publish reads again (see the module docstring).
REREAD_DAYS = 3


class PaperSource(Protocol):
    """The part of the store a publish reads (`digest.store.Store` has exactly this)."""

    def papers_between(self, low: date, high: date) -> list[Paper]:
        """Papers first seen (UTC) on a day from `low` up to, not including, `high`."""
        ...

    def paper_days(self, since: date | None = None) -> list[date]:
        """The UTC days papers were first seen on (from `since`), oldest first."""
        ...

    def newest_paper_row(self) -> int:
        """The newest row number (rows only grow)."""
        ...

    def arrival_days(self, low: int, high: int) -> list[date]:
        """The UTC days first seen of the rows after `low` up to `high`."""
        ...


class PaperList:
    """A plain sequence of papers as a `PaperSource` (tests and small callers): it has
    no rows, so every publish reads all of it."""

    def __init__(self, papers: Sequence[Paper]) -> None:
        self._by_day: dict[date, list[Paper]] = {}
        for paper in papers:
            if paper.first_seen is not None:
                self._by_day.setdefault(day_of(paper.first_seen), []).append(paper)

    def papers_between(self, low: date, high: date) -> list[Paper]:
        return [p for d, ps in self._by_day.items() if low <= d < high for p in ps]

    def paper_days(self, since: date | None = None) -> list[date]:
        return sorted(d for d in self._by_day if since is None or d >= since)

    def newest_paper_row(self) -> int:
        return 0

    def arrival_days(self, low: int, high: int) -> list[date]:
        return []


@dataclass(frozen=True, slots=True)
class Reading:
    """Which days a publish reads: from `since` on, up to today."""

    days: list[date]  #: the days from `since` on that have papers, oldest first
    since: date | None  #: None: every day is read, the saved days are all superseded
    row: int | None  #: the source's newest row when planned (None for a plain sequence)


def plan_reading(
    source: Sequence[Paper] | PaperSource,
    manifest: Manifest,
    today: date,
    *,
    incremental: bool,
) -> tuple[PaperSource, Reading]:
    """The source to read and which of its days this publish must look at: every day
    unless `incremental` (the saved state is complete and still describes the same
    ranking and templates). No paper is read here."""
    if isinstance(source, Sequence):
        listed = PaperList(source)
        return listed, Reading(_upto(listed.paper_days(), today), None, None)
    high = source.newest_paper_row()
    previous, through = manifest.row, manifest.through
    if not incremental or previous is None or through is None or high < previous:
        return source, Reading(_upto(source.paper_days(), today), None, high)
    candidates = [today - timedelta(days=REREAD_DAYS - 1)]
    if today > through:
        candidates.append(through + timedelta(days=1))
    candidates += source.arrival_days(previous, high)
    since = min(candidates)
    return source, Reading(_upto(source.paper_days(since), today), since, high)


def _upto(days: list[date], today: date) -> list[date]:
    return [d for d in days if d <= today]
