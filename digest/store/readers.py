"""What a reader's manage page needs of the store (pausing, their last digests), and
what a sweep needs (the readers whose next send time has come). Part of the store (the
only SQL in the project)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from digest.model import Delivery, Subscriber
from digest.store.base import iso
from digest.store.deliveries import DeliveriesMixin
from digest.store.next_send import refresh_next_send
from digest.store.subscribers import SubscribersMixin


class ReaderPagesMixin(DeliveriesMixin):
    """A reader pausing their digests, and the digests they got."""

    def set_paused(self, subscriber_id: int, paused: bool, now: datetime) -> bool:
        """Pause (or resume) a confirmed reader's digests; False when nothing changed.

        A paused reader reads as status "paused" and is planned no digest; the papers
        that arrive meanwhile are not saved up for the first digest after resuming.
        """
        with self._transaction() as db:
            if paused:
                cur = db.execute(
                    "UPDATE subscribers SET paused_at = ?, next_send_at = NULL"
                    " WHERE id = ? AND status = 'confirmed'"
                    " AND paused_at IS NULL",
                    (iso(now), subscriber_id),
                )
            else:
                cur = db.execute(
                    "UPDATE subscribers SET paused_at = NULL"
                    " WHERE id = ? AND paused_at IS NOT NULL",
                    (subscriber_id,),
                )
                refresh_next_send(db, [subscriber_id], now)
            return cur.rowcount > 0

    def recent_deliveries(self, subscriber_id: int, limit: int = 5) -> list[Delivery]:
        """This reader's latest `limit` digests, newest first."""
        return self._deliveries(
            "WHERE d.subscriber_id = ? ORDER BY d.digest_date DESC LIMIT ?", (subscriber_id, limit)
        )


#: A reader's place in the order of next send times: (next_send_at as stored, id).
DueKey = tuple[str, int]


class DueReadersMixin(SubscribersMixin):
    """The readers whose next send time has come, from its index (`store.next_send`)."""

    def due_keys(
        self,
        now: datetime,
        *,
        after: DueKey | None = None,
        upto: DueKey | None = None,
        limit: int = 10_000,
    ) -> list[DueKey]:
        """At most `limit` (next send time, id) of the confirmed readers whose next send
        time is `now` or earlier, in that order, after `after` and up to `upto` (both
        included in the order: a key is the last one of a page, or of a shard)."""
        where, args = ["next_send_at <= ?"], list[object]([iso(now)])
        if after is not None:
            where.append("(next_send_at > ? OR (next_send_at = ? AND id > ?))")
            args += [after[0], after[0], after[1]]
        if upto is not None:
            where.append("(next_send_at < ? OR (next_send_at = ? AND id <= ?))")
            args += [upto[0], upto[0], upto[1]]
        rows = self._db.execute(
            "SELECT next_send_at, id FROM subscribers WHERE "
            + " AND ".join(where)
            + " AND status = 'confirmed' AND paused_at IS NULL"
            " ORDER BY next_send_at, id LIMIT ?",
            (*args, limit),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def due_subscribers(
        self,
        now: datetime,
        *,
        after: DueKey | None = None,
        upto: DueKey | None = None,
        limit: int = 1000,
    ) -> list[tuple[DueKey, Subscriber]]:
        """The readers of `due_keys` (same arguments), with their profiles, each with its
        key: a ranking shard reads its readers a page at a time."""
        keys = self.due_keys(now, after=after, upto=upto, limit=limit)
        found = self.subscribers_by_id([i for _, i in keys])
        return [(key, found[key[1]]) for key in keys if key[1] in found]

    def advance_next_send(self, subscriber_ids: Sequence[int], now: datetime) -> None:
        """Recompute these readers' next send times at `now`: a shard moves the readers
        it found not due yet (their send time today has not come) to that time, so that
        later sweeps do not read them again before it (see `digest.due`)."""
        with self._transaction("moving readers' next send times") as db:
            refresh_next_send(db, subscriber_ids, now)
