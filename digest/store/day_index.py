"""The day's paper index, kept for every ranking shard to load (`digest.dayindex` makes
and reads it; here it is an opaque blob). Part of the store.

One row per key (the analysis and the index's own format: `dayindex.index_key`), for
the papers whose rows are in (low, high]. The first shard that finds none covering its
papers makes it while holding the key's lock (`share_day_index`); the shards that ask
meanwhile wait for it and find it made, so a sweep's shards build it once, not once each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.store.base import StoreBase, iso

#: A kept index of another key (an older version of the code, other synonyms) older than
#: this is deleted when an index is kept: workers of two versions may run side by side
#: for a while (a rolling upgrade), each with its own.
OTHER_KEYS_KEPT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class KeptDayIndex:
    """A kept day index: the papers whose rows are in (low, high], as `data`."""

    low: int
    high: int
    data: bytes

    def covers(self, low: int, high: int) -> bool:
        """Whether it holds every paper whose row is in (low, high]."""
        return self.low <= low and high <= self.high


class DayIndexMixin(StoreBase):
    """The `day_index` table."""

    def day_index(self, key: str) -> KeptDayIndex | None:
        """The day index kept under `key`, if any."""
        row = self._db.execute(
            "SELECT low, high, data FROM day_index WHERE key = ?", (key,)
        ).fetchone()
        return KeptDayIndex(int(row[0]), int(row[1]), bytes(row[2])) if row else None

    def share_day_index(
        self,
        key: str,
        low: int,
        high: int,
        now: datetime,
        build: Callable[[int, int], bytes | None],
    ) -> KeptDayIndex | None:
        """The day index under `key` that covers the rows (low, high]: the kept one when
        it does, else `build(lo, high)` (kept, replacing the old one), one process at a
        time: the others wait for this transaction and find it made.

        `lo` is `low`, or lower when the kept index has the same `high` (the same papers
        arrived, a shard whose oldest reader is older): each of a sweep's shards is then
        covered by the last one made. `build` reads the store on this connection; None
        from it (an index too big to share) keeps nothing, and so does this."""
        with self._transaction("sharing the day's paper index") as db:
            self._serialize(db, f"day_index:{key}")
            row = db.execute(
                "SELECT low, high, data FROM day_index WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                kept = KeptDayIndex(int(row[0]), int(row[1]), bytes(row[2]))
                if kept.covers(low, high):
                    return kept
                if kept.high == high:
                    low = min(low, kept.low)
            data = build(low, high)
            if data is None:
                return None
            db.execute(
                "INSERT INTO day_index (key, low, high, made_at, data) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET low = excluded.low, high = excluded.high,"
                " made_at = excluded.made_at, data = excluded.data",
                (key, low, high, iso(now), data),
            )
            db.execute(
                "DELETE FROM day_index WHERE key <> ? AND made_at < ?",
                (key, iso(now - OTHER_KEYS_KEPT)),
            )
        return KeptDayIndex(low, high, data)
