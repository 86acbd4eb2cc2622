"""What a reader's manage page needs of the store: pausing, and their last digests.
Part of the store (the only SQL in the project)."""

from __future__ import annotations

from datetime import datetime

from digest.model import Delivery
from digest.store.base import iso
from digest.store.deliveries import DeliveriesMixin


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
                    "UPDATE subscribers SET paused_at = ? WHERE id = ? AND status = 'confirmed'"
                    " AND paused_at IS NULL",
                    (iso(now), subscriber_id),
                )
            else:
                cur = db.execute(
                    "UPDATE subscribers SET paused_at = NULL"
                    " WHERE id = ? AND paused_at IS NOT NULL",
                    (subscriber_id,),
                )
            return cur.rowcount > 0

    def recent_deliveries(self, subscriber_id: int, limit: int = 5) -> list[Delivery]:
        """This reader's latest `limit` digests, newest first."""
        return self._deliveries(
            "WHERE d.subscriber_id = ? ORDER BY d.digest_date DESC LIMIT ?", (subscriber_id, limit)
        )
