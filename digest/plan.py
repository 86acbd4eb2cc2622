"""The daily planner: who is due, which papers are new to them, what each digest holds.

It only processes data (like reader's `Decider`): readers, their last digests and
ledgers, the papers in arrival order, now and settings in; plans out. The send loop
(`send.py`) reads the store, calls these two functions and claims what they return.

One notion of "new": a paper is new to a reader when it ARRIVED in the store (its row)
after the reader's previous digest, whatever date its source printed. A first digest
holds what arrived in the one period (a day, or a week for weekly readers) before it.

    due_readers(subscribers, last, claimed, now, first_rows)   -> [Due]
    plan_digests(due, arrivals, ledgers, now, settings, ...)   -> [Planned], empty

Every reader's window is a run of rows ending at the newest one, so all readers are
ranked against ONE index of the papers since the oldest window (`rank.prepare`), each
profile cut to its own window and ledger before its max_items: the cost does not grow
with the number of distinct windows.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfoNotFoundError

import numpy as np

from digest import due, rank
from digest.model import Digest, DigestSection, LastDigest, Paper, Profile, Subscriber

if TYPE_CHECKING:
    from digest.rank.learn import Rated
    from digest.rank.related import RelatedTerms

#: How far back a first digest looks, by frequency (`due`: the one rule of when).
PERIODS = due.PERIODS
WEEK = due.GAP_DAYS["weekly"]


@dataclass(frozen=True, slots=True)
class Due:
    """A reader whose digest is due now."""

    subscriber: Subscriber
    day: date  #: the reader's local day: the digest's date (one per reader and day)
    after_row: int  #: the digest holds papers whose row is after this one
    window_start: datetime  #: when that row arrived, about (for the record)


@dataclass(frozen=True, slots=True)
class Planned:
    """A digest ready to claim."""

    due: Due
    digest: Digest

    @property
    def paper_ids(self) -> tuple[str, ...]:
        return tuple(i.paper.id for s in self.digest.sections for i in s.items)


class Ledgers(Mapping[int, frozenset[str]]):
    """Each reader's sent papers among a window's papers: {subscriber id: paper ids}.

    Kept as two integer arrays sorted by reader (what `Store.sent_pairs` gives), so a week
    of 100,000 readers' ledgers is tens of MB, not a set of strings per reader; a reader's
    set is made when the planner asks for it.
    """

    def __init__(self, readers: Sequence[int], positions: Sequence[int], ids: Sequence[str]):
        r = np.asarray(readers, dtype=np.int64)
        order = np.argsort(r, kind="stable")
        self._columns = np.asarray(positions, dtype=np.int64)[order]
        ranked = r[order]
        uniq, starts = np.unique(ranked, return_index=True)
        ends = np.append(starts[1:], len(ranked)) if len(starts) else starts
        spans = zip(uniq.tolist(), starts.tolist(), ends.tolist(), strict=True)
        self._spans = {reader: (a, b) for reader, a, b in spans}
        self._ids = ids

    def __getitem__(self, reader: int) -> frozenset[str]:
        start, end = self._spans[reader]
        return frozenset(self._ids[c] for c in self._columns[start:end].tolist())

    def __iter__(self) -> Iterator[int]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)


def local_day(sub: Subscriber, now: datetime) -> tuple[date, bool]:
    """The subscriber's local date now, and whether their send time has passed."""
    return due.local_day(sub.timezone, sub.send_at, now)


def due_readers(
    subscribers: Sequence[Subscriber],
    last: Mapping[int, LastDigest],
    claimed: Collection[tuple[int, date]],
    now: datetime,
    first_rows: Mapping[str, int],
    digest_date: date | None = None,
    skipped: dict[int, str] | None = None,
) -> list[Due]:
    """The confirmed readers with profiles whose local send time has passed and who have
    no digest for their local day yet (weekly readers: none in the last 7 days).

    `last`: each reader's previous digest; `claimed`: (subscriber id, day) pairs that
    already have a delivery; `first_rows[frequency]`: the newest row that had arrived one
    period ago (where a first digest starts); `digest_date` overrides the day and the
    send time (`digest send --date`) for readers whose local day is that day or later:
    a day still to come is never claimed, so no reader's schedule moves. A reader whose
    row cannot be read (a time zone this machine does not know, a send time that is no
    time) is left out, and why goes into `skipped` by id: one bad row must not stop
    everyone's digest.
    """
    out = []
    for sub in subscribers:
        if sub.status != "confirmed" or not sub.profiles:
            continue
        try:
            day, time_has_come = local_day(sub, now)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            if skipped is not None:
                skipped[sub.id] = _row_problem(sub, exc)
            continue
        if digest_date is not None:
            if digest_date > day:  # a day still to come for this reader: claiming it now
                continue  # would take that day's digest (and a weekly reader's week) away
            day, time_has_come = digest_date, True
        if not time_has_come or (sub.id, day) in claimed:
            continue
        before = last.get(sub.id)
        if sub.frequency == "weekly" and before and (day - before.digest_date).days < WEEK:
            continue
        period = PERIODS.get(sub.frequency, PERIODS["daily"])
        if before is not None and before.papers_upto is not None:
            out.append(Due(sub, day, before.papers_upto, before.window_end))
        else:  # a first digest (or one before digests remembered their rows)
            out.append(Due(sub, day, first_rows[sub.frequency], now - period))
    return out


def _row_problem(sub: Subscriber, exc: Exception) -> str:
    if isinstance(exc, ZoneInfoNotFoundError):
        return f"unknown time zone {sub.timezone!r}; fix it with `digest subscribe --timezone`"
    return f"cannot read timezone {sub.timezone!r} / send_at {sub.send_at!r} ({exc})"


def plan_digests(
    due: Sequence[Due],
    arrivals: Sequence[tuple[int, Paper]],
    ledgers: Mapping[int, Collection[str]],
    now: datetime,
    *,
    settings: rank.RankSettings,
    synonyms: Mapping[str, Sequence[str]] | None,
    title: str,
    notes: Sequence[str] = (),
    prepared: rank.Prepared | None = None,
    ratings: Mapping[int, Sequence[Rated]] | None = None,
    related: RelatedTerms | None = None,
) -> tuple[list[Planned], int]:
    """Each due reader's digest from `arrivals` ((row, paper) in row order), and how many
    were left out because nothing new matched and the reader asked for no empty note.

    `ledgers[reader]`: papers sent to them before (never again). A paper shows in one
    section of a digest only: a later section asks for as many more as the earlier ones
    may take (bounded by the digest's size, not by the reader's history). `prepared`:
    `rank.prepare` of the arrivals' papers, to share it between pages of readers.
    `ratings[reader]`: the papers they rated (`rank.learn`), each counted for the
    profiles it is about (`learn.assign`). `related`: the stored papers' related terms
    (`bridges.related_for`), read when the planner indexes the arrivals itself (a given
    `prepared` already holds them: `window.kept_index`).
    """
    rows = [r for r, _ in arrivals]
    if prepared is None:
        papers = [p for _, p in arrivals]
        prepared = rank.prepare(papers, now, settings, synonyms, related=related)
    profiles: list[Profile] = []
    owners: list[tuple[int, Profile, int]] = []
    excludes: list[Collection[str]] = []
    starts: list[int] = []
    rated: list[Sequence[Rated]] = []
    for m, d in enumerate(due):
        ledger = ledgers.get(d.subscriber.id, ())
        start = bisect.bisect_right(rows, d.after_row)
        earlier = 0
        mine = ratings.get(d.subscriber.id) if ratings else None
        subs = d.subscriber.profiles
        if mine:
            rated += rank.assign_ratings(subs, mine, prepared.analyzer, settings)
        else:
            rated += [()] * len(subs)
        for profile in subs:
            limit = settings.max_items_of(profile)
            profiles.append(replace(profile, max_items=limit + earlier))
            owners.append((m, profile, limit))
            excludes.append(ledger)
            starts.append(start)
            earlier += limit
    learn = rated if any(rated) else None
    ranked = rank.rank_prepared(prepared, profiles, excludes, starts, learn)
    sections: dict[int, list[DigestSection]] = {}
    taken: dict[int, set[str]] = {}
    for (m, profile, limit), result in zip(owners, ranked, strict=True):
        seen = taken.setdefault(m, set())
        fresh = [i for i in result.items if i.paper.id not in seen]
        kept = tuple(fresh[:limit])
        seen.update(i.paper.id for i in kept)
        shown_elsewhere = len(result.items) - len(fresh)
        more = max(0, result.matched - shown_elsewhere - len(kept))
        sections.setdefault(m, []).append(DigestSection(profile, kept, more))
    planned, empty = [], 0
    for m, d in enumerate(due):
        digest = Digest(
            day=d.day,
            title=title,
            sections=tuple(sections.get(m, ())),
            papers_considered=len(rows) - bisect.bisect_right(rows, d.after_row),
            notes=tuple(notes),
        )
        if digest.item_count == 0 and not d.subscriber.notify_empty:
            empty += 1
            continue
        planned.append(Planned(d, digest))
    return planned, empty
