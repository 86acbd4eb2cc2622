"""Readers' ratings of papers ("more like this" / "not for me"). Part of the store (the
only SQL in the project): one rating per reader and paper, the latest answer wins."""

from __future__ import annotations

from datetime import datetime

from digest.model import Rating
from digest.store.base import StoreBase, iso


class RatingsMixin(StoreBase):
    """Recording, listing and withdrawing ratings."""

    def rate(
        self, subscriber_id: int, paper_id: str, vote: int, now: datetime, via: str = "email"
    ) -> bool:
        """Record `vote` (+1 or -1) of a reader about a paper, replacing an earlier one:
        rating twice the same way changes nothing but the time. False when the reader or
        the paper does not exist (nothing is recorded)."""
        if vote not in (-1, 1):
            raise ValueError(f"a vote is +1 or -1, not {vote!r}")
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO ratings (subscriber_id, paper_id, vote, via, rated_at)"
                " SELECT s.id, p.id, ?, ?, ? FROM subscribers s, papers p"
                " WHERE s.id = ? AND p.id = ?"
                " ON CONFLICT (subscriber_id, paper_id) DO UPDATE SET"
                " vote = excluded.vote, via = excluded.via, rated_at = excluded.rated_at",
                (vote, via, iso(now), subscriber_id, paper_id),
            )
            return cur.rowcount > 0

    def unrate(self, subscriber_id: int, paper_id: str) -> bool:
        """Withdraw a reader's rating of a paper; False when there was none."""
        with self._transaction() as db:
            cur = db.execute(
                "DELETE FROM ratings WHERE subscriber_id = ? AND paper_id = ?",
                (subscriber_id, paper_id),
            )
            return cur.rowcount > 0

    def ratings(self, subscriber_id: int, limit: int | None = None) -> list[Rating]:
        """A reader's ratings, newest first, with the papers' titles."""
        found = self._ratings("r.subscriber_id = ?", (subscriber_id,))
        return found if limit is None else found[:limit]

    def rating(self, subscriber_id: int, paper_id: str) -> Rating | None:
        """A reader's rating of one paper, or None."""
        found = self._ratings("r.subscriber_id = ? AND r.paper_id = ?", (subscriber_id, paper_id))
        return found[0] if found else None

    def _ratings(self, where: str, args: tuple[object, ...]) -> list[Rating]:
        rows = self._db.execute(
            "SELECT r.subscriber_id, r.paper_id, r.vote, r.rated_at, r.via, p.title"
            f" FROM ratings r JOIN papers p ON p.id = r.paper_id WHERE {where}"
            " ORDER BY r.rated_at DESC, r.paper_id",
            args,
        )
        return [Rating(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4], r[5]) for r in rows]
