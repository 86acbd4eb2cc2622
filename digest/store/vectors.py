"""Paper and keyword vectors: each paper's and each keyword text's sentence vector for
the optional semantic layer. Part of the store.

The blobs are opaque here (`digest.rank.dense` makes and reads them); `model` says which
model made a blob, and a reader asks for its own model only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from digest.codec import PAPER_COLUMNS, paper_from_row
from digest.model import Paper
from digest.store.base import StoreBase, rows_in


class VectorsMixin(StoreBase):
    """The `paper_vectors` and `keyword_vectors` tables."""

    def paper_vectors(self, ids: Sequence[str], model: str) -> dict[str, bytes]:
        """The vectors of these papers made by `model` (papers without one are left out)."""
        sql = "SELECT paper_id, data FROM paper_vectors WHERE model = ? AND paper_id IN ({marks})"
        return {pid: bytes(data) for pid, data in rows_in(self._db, sql, ids, (model,))}

    def keep_paper_vectors(self, blobs: Iterable[tuple[str, bytes]], model: str) -> int:
        """Keep (paper id, blob) pairs made by `model`, replacing older ones; how many."""
        return self._keep_rows(
            "INSERT INTO paper_vectors (paper_id, model, data) VALUES (?, ?, ?)"
            " ON CONFLICT(paper_id) DO UPDATE SET model = excluded.model, data = excluded.data",
            [(pid, model, data) for pid, data in blobs],
        )

    def papers_lacking_vectors(self, model: str, after_row: int = 0) -> list[Paper]:
        """The papers whose row is after `after_row` and that have no vector by `model`
        (new ones, ones whose text changed, or all of them after the model changed), in
        arrival order."""
        rows = self._db.execute(
            f"SELECT {', '.join('p.' + c for c in PAPER_COLUMNS)} FROM papers p"
            " LEFT JOIN paper_vectors v ON v.paper_id = p.id AND v.model = ?"
            " WHERE p.rowid > ? AND v.paper_id IS NULL ORDER BY p.rowid",
            (model, after_row),
        ).fetchall()
        return [paper_from_row(r) for r in rows]

    def count_paper_vectors(self, model: str) -> int:
        """How many papers have a vector by `model`."""
        (n,) = self._db.execute(
            "SELECT count(*) FROM paper_vectors WHERE model = ?", (model,)
        ).fetchone()
        return int(n)

    def keyword_vectors(self, texts: Sequence[str], model: str) -> dict[str, bytes]:
        """The kept vectors of these keyword texts made by `model` (others left out)."""
        sql = "SELECT text, data FROM keyword_vectors WHERE model = ? AND text IN ({marks})"
        return {text: bytes(data) for text, data in rows_in(self._db, sql, texts, (model,))}

    def keep_keyword_vectors(self, blobs: Iterable[tuple[str, bytes]], model: str) -> int:
        """Keep (keyword text, blob) pairs made by `model`; a text kept already (by another
        process in the meantime) keeps its blob: the same model made both. How many given."""
        return self._keep_rows(
            "INSERT INTO keyword_vectors (model, text, data) VALUES (?, ?, ?)"
            " ON CONFLICT(model, text) DO NOTHING",
            [(model, text, data) for text, data in blobs],
        )

    def _keep_rows(self, sql: str, rows: list[tuple[str, str, bytes]]) -> int:
        """`sql` for each row, in one transaction; how many rows."""
        with self._transaction() as db:
            db.executemany(sql, rows)
        return len(rows)
