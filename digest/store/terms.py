"""Paper terms: each paper's analysed text, kept so it is analysed once. Part of the store.

The blobs are opaque here (`digest.rank.terms` makes and reads them); `key` says which
analysis made a blob, and a reader asks for its own key only. Keeping blobs keeps their
postings too, in the same transaction (`store.postings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from digest.codec import PAPER_COLUMNS, paper_from_row
from digest.model import Paper
from digest.store.base import rows_in
from digest.store.postings import PostingsMixin


class TermsMixin(PostingsMixin):
    """The `paper_terms` table (and, through `PostingsMixin`, the postings made of it)."""

    def paper_terms(self, ids: Sequence[str], key: str) -> dict[str, bytes]:
        """The blobs of these papers made under `key` (papers without one are left out)."""
        sql = "SELECT paper_id, data FROM paper_terms WHERE key = ? AND paper_id IN ({marks})"
        return {pid: bytes(data) for pid, data in rows_in(self._db, sql, ids, (key,))}

    def keep_paper_terms(self, blobs: Iterable[tuple[str, bytes]], key: str) -> int:
        """Keep (paper id, blob) pairs made under `key`, replacing older ones, and their
        postings; how many."""
        rows = [(pid, key, data) for pid, data in blobs]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO paper_terms (paper_id, key, data) VALUES (?, ?, ?)"
                " ON CONFLICT(paper_id) DO UPDATE SET key = excluded.key, data = excluded.data",
                rows,
            )
            self._keep_postings(db, [(pid, data) for pid, _, data in rows], key)
        return len(rows)

    def papers_lacking_terms(self, key: str, after_row: int) -> list[Paper]:
        """The papers whose row is after `after_row` and that have no blob under `key`
        (new ones, ones whose text changed, or all of them after the analysis changed)."""
        rows = self._db.execute(
            f"SELECT {', '.join('p.' + c for c in PAPER_COLUMNS)} FROM papers p"
            " LEFT JOIN paper_terms t ON t.paper_id = p.id AND t.key = ?"
            " WHERE p.rowid > ? AND t.paper_id IS NULL ORDER BY p.rowid",
            (key, after_row),
        ).fetchall()
        return [paper_from_row(r) for r in rows]
