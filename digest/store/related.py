"""Related terms: the table `rank.related.learn` makes from the stored papers. Part of the
store.

The rows are opaque here (`digest.rank.related` makes and reads them); `key` names the
analysis whose features they relate (`rank.terms_key`), and a reader asks for its own key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from digest.codec import time_text
from digest.store.base import StoreBase, rows_in


class RelatedMixin(StoreBase):
    """The `related_terms` and `related_state` tables."""

    def keep_related_terms(
        self, key: str, rows: Iterable[tuple[str, str, float]], papers: int, now: datetime
    ) -> int:
        """Replace the table kept under `key` by these (feature, related feature, weight)
        rows, learned from `papers` papers at `now`; how many rows."""
        got = [(key, f, g, float(w)) for f, g, w in rows]
        with self._transaction() as db:
            db.execute("DELETE FROM related_terms WHERE key = ?", (key,))
            db.executemany(
                "INSERT INTO related_terms (key, feature, related, weight) VALUES (?, ?, ?, ?)",
                got,
            )
            db.execute("DELETE FROM related_state WHERE key = ?", (key,))
            db.execute(
                "INSERT INTO related_state (key, papers, made_at) VALUES (?, ?, ?)",
                (key, papers, time_text(now)),
            )
        return len(got)

    def related_terms(
        self, key: str, features: Sequence[str] | None
    ) -> tuple[list[tuple[str, str, float]], int]:
        """The rows kept under `key` for these features (feature, related, weight; None:
        every feature's), and how many papers they were learned from (0: no table)."""
        state = self._db.execute(
            "SELECT papers FROM related_state WHERE key = ?", (key,)
        ).fetchone()
        if state is None:
            return [], 0
        if features is None:
            found = self._db.execute(
                "SELECT feature, related, weight FROM related_terms WHERE key = ?", (key,)
            )
            return [(str(f), str(g), float(w)) for f, g, w in found], int(state[0])
        sql = (
            "SELECT feature, related, weight FROM related_terms"
            " WHERE key = ? AND feature IN ({marks})"
        )
        rows = [(str(f), str(g), float(w)) for f, g, w in rows_in(self._db, sql, features, (key,))]
        return rows, int(state[0])

    def related_made(self, key: str) -> str:
        """Which table is kept under `key`: its paper count and when it was learned
        ("" when none is), so a cache of rankings that read it knows when it changed."""
        state = self._db.execute(
            "SELECT papers, made_at FROM related_state WHERE key = ?", (key,)
        ).fetchone()
        return "" if state is None else f"{int(state[0])}@{state[1]}"
