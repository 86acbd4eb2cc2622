"""Which papers a publish reads: all of them, or only the days that may have changed.

A year at 2,000 papers a day is 730,000 papers; reading, hashing and grouping all of them
costs more than a new day is worth. So `publish` takes either a plain sequence of papers
(read whole, every time: tests and small callers) or a `PaperSource`, which the store
already is, and then reads only the days from `since` on, where `since` is the earliest of

- the day of any paper that arrived (a new store row) since the last publish;
- the day after the last publish's "today", when `now` has moved on (days after the
  old today were not published then);
- the last `REREAD_DAYS` days up to today: a paper's upvotes and details keep changing
  for a few days after it is first listed, and merges into old rows add no row.

Older days keep what the last publish made of them (picks, pages). A change to a paper
older than that window (a merge into an old row) shows when its day is read again: by
`publish(..., full=True)`, or whenever the ranking basis or the templates change, or the
build state is lost, since each of those reads every day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from digest.model import Paper
from digest.publish.manifest import Manifest
from digest.publish.names import day_of

#: Days up to today that every publish reads again (see the module docstring).
REREAD_DAYS = 3


class PaperSource(Protocol):
    """The part of the store a publish reads (`digest.store.Store` has exactly this)."""

    def papers(self, since: date | datetime | None = None) -> list[Paper]:
        """Papers first seen on or after `since` (all when None)."""
        ...

    def newest_paper_row(self) -> int:
        """The newest row number (rows only grow)."""
        ...

    def arrivals(self, low: int, high: int) -> list[tuple[int, Paper]]:
        """(row, paper) of the rows after `low` up to `high`."""
        ...


@dataclass(frozen=True, slots=True)
class Reading:
    """The papers a publish read, and which days they cover."""

    papers: list[Paper]  #: every paper of the days from `since` on (up to today)
    since: date | None  #: None: every day was read, the saved days are all superseded
    row: int | None  #: the source's newest row when read (None for a plain sequence)


def read_papers(
    source: Sequence[Paper] | PaperSource,
    manifest: Manifest,
    today: date,
    *,
    incremental: bool,
) -> Reading:
    """Read what this publish must look at; everything unless `incremental` (the saved
    state is complete and still describes the same ranking and templates)."""
    if isinstance(source, Sequence):
        return Reading(list(source), None, None)
    high = source.newest_paper_row()
    previous, through = manifest.row, manifest.through
    if not incremental or previous is None or through is None or high < previous:
        return Reading(source.papers(), None, high)
    candidates = [today - timedelta(days=REREAD_DAYS - 1)]
    if today > through:
        candidates.append(through + timedelta(days=1))
    candidates += [day_of(p.first_seen) for _, p in source.arrivals(previous, high) if p.first_seen]
    since = min(candidates)
    papers = [
        p for p in source.papers(since=since) if p.first_seen and day_of(p.first_seen) >= since
    ]
    return Reading(papers, since, high)
