"""Each reader's next send time, `subscribers.next_send_at`: kept by the store, indexed.

The column holds `due.next_send_at` of the reader's row and latest digest (UTC), or NULL
for a reader who cannot be due (not confirmed, paused, no profile). Every write that can
change it recomputes it in the same transaction: a subscribe, a change of settings or
profiles, a confirmation, pause, resume or unsubscribe, and a claim (the new digest moves
the time to the next day, or week). A sweep then reads `WHERE next_send_at <= now` from
the index, not every reader. A row this machine cannot read (an unknown time zone) gets
the time it was confirmed: it stays in every sweep, where the planner reports why it is
skipped, as `digest send` does.

Functions, not a mixin: the schema steps that add the column fill it with the same code
(`fill_next_send`), and this module must not import the store's base (which imports the
schema).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfoNotFoundError

from digest.codec import time_text
from digest.due import next_send_at

#: Readers recomputed per statement (below SQLite's 999 parameters).
_CHUNK = 900
#: What the rule needs of each reader, one row each (`{marks}`: their ids). The latest
#: digest's date is one seek in (subscriber_id, digest_date)'s unique index.
_ROWS = (
    "SELECT s.id, s.status, s.paused_at, s.timezone, s.send_at, s.frequency,"
    " coalesce(s.confirmed_at, s.created_at),"
    " EXISTS (SELECT 1 FROM subscriber_profiles p WHERE p.subscriber_id = s.id),"
    " (SELECT max(d.digest_date) FROM deliveries d WHERE d.subscriber_id = s.id)"
    " FROM subscribers s WHERE s.id IN ({marks})"
)
_SET = "UPDATE subscribers SET next_send_at = ? WHERE id = ?"


class _Db(Protocol):
    """What this module uses of a connection (sqlite3's, or `store.pg`'s)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


def value_of(row: Sequence[Any], now: datetime | None) -> str | None:
    """The column's value for one row of `_ROWS` (stored text, or None), computed at
    `now` (None: when the reader was confirmed, a bound that holds at any time)."""
    _, status, paused_at, timezone, send_at, frequency, confirmed, has_profile, last = row
    if status != "confirmed" or paused_at is not None or not has_profile:
        return None
    try:
        return _next_text(timezone, send_at, frequency, last, now or confirmed)
    except (ZoneInfoNotFoundError, ValueError):  # stays due: the planner says why not
        return time_text(datetime.fromisoformat(confirmed))


@functools.lru_cache(maxsize=4096)  # a batch of readers shares a few zones, times, days
def _next_text(
    timezone: str, send_at: str, frequency: str, last: str | None, since: datetime | str
) -> str:
    start = since if isinstance(since, datetime) else datetime.fromisoformat(since)
    last_day = date.fromisoformat(last) if last else None
    return time_text(next_send_at(timezone, send_at, frequency, last_day, start))


def refresh_next_send(db: _Db, ids: Iterable[int], now: datetime | None) -> None:
    """Recompute these readers' next send times at `now` (see `value_of`) inside the
    caller's transaction, in id order: two writers meeting on the same rows wait for
    each other, never in a cycle."""
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = db.execute(_ROWS.replace("{marks}", ",".join("?" * len(chunk))), chunk)
        values = sorted(((value_of(r, now), r[0]) for r in rows), key=lambda v: v[1])
        db.executemany(_SET, values)


def fill_next_send(db: _Db) -> None:
    """Compute every reader's next send time (the schema step that adds the column)."""
    after = 0
    while True:
        ids = [
            int(r[0])
            for r in db.execute(
                "SELECT id FROM subscribers WHERE id > ? ORDER BY id LIMIT ?", (after, _CHUNK)
            )
        ]
        if not ids:
            return
        refresh_next_send(db, ids, None)
        after = ids[-1]
