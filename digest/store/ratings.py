"""Readers' ratings of papers ("more like this" / "not for me"). Part of the store (the
only SQL in the project): one rating per reader and paper, the latest answer wins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from digest.codec import PAPER_COLUMNS, paper_from_row
from digest.model import Paper, Rating
from digest.store.base import StoreBase, iso, rows_in

#: A reader's newest ratings the ranker learns from (older ones are kept, not read).
LEARN_LIMIT = 200


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

    def rated_papers(
        self, subscriber_ids: Sequence[int], key: str, limit: int = LEARN_LIMIT
    ) -> dict[int, list[tuple[Paper, int, bytes | None]]]:
        """What the ranker learns from, for a page of readers in one query: each reader's
        newest `limit` ratings as (paper, vote, its kept terms under `key` or None)."""
        columns = ", ".join("p." + c for c in PAPER_COLUMNS)
        sql = (
            f"SELECT r.subscriber_id, r.vote, t.data, {columns} FROM ratings r"
            " JOIN papers p ON p.id = r.paper_id"
            " LEFT JOIN paper_terms t ON t.paper_id = p.id AND t.key = ?"
            " WHERE r.subscriber_id IN ({marks})"
            " ORDER BY r.subscriber_id, r.rated_at DESC, r.paper_id"
        )
        out: dict[int, list[tuple[Paper, int, bytes | None]]] = {}
        for row in rows_in(self._db, sql, list(subscriber_ids), (key,)):
            mine = out.setdefault(row[0], [])
            if len(mine) < limit:
                blob = bytes(row[2]) if row[2] is not None else None
                paper = paper_from_row(cast(Mapping[str, Any], row))  # a Row reads by name
                mine.append((paper, int(row[1]), blob))
        return out

    def _ratings(self, where: str, args: tuple[object, ...]) -> list[Rating]:
        rows = self._db.execute(
            "SELECT r.subscriber_id, r.paper_id, r.vote, r.rated_at, r.via, p.title"
            f" FROM ratings r JOIN papers p ON p.id = r.paper_id WHERE {where}"
            " ORDER BY r.rated_at DESC, r.paper_id",
            args,
        )
        return [Rating(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4], r[5]) for r in rows]
