"""The kept postings (`rank.postings` makes and reads them): each kept blob's features,
inverted a block of papers at a time, so a ranking of known features reads only theirs.

Written with the blobs they come from (`TermsMixin.keep_paper_terms`, one transaction),
and after an upgrade for the papers analysed before it (`backfill_postings`). A paper
kept again moves to the new block, a paper whose text changes loses its postings with
its blob (`forget_postings`), and a block no paper points to any more is deleted: a
paper's counts row exists only while its postings are true of its text.

The search rows of the same blobs (`paper_search`, `rank.searchrows`: what the archive's
search index reads of a paper) are kept with the postings, and after the upgrade to them
backfilled once the postings are (`backfill_postings` again); a row goes with its blob.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from digest.store.base import Connection, StoreBase, execute_in, rows_in

if TYPE_CHECKING:
    from digest.rank.postings import KeptCounts

#: A bucket row's rowid is `block * CELLS + bucket` (buckets: < 2**rank.postings.MAX_BITS).
CELLS = 1 << 16


class PostingsMixin(StoreBase):
    """The `term_blocks`, `term_counts` and `term_postings` tables."""

    def term_counts(self, ids: Sequence[str], key: str) -> dict[str, KeptCounts]:
        """Where the postings of these papers are, made under `key`, with their text hash
        and word counts (papers without are left out: their blobs stand for them)."""
        from digest.rank.postings import KeptCounts

        sql = (
            "SELECT c.paper_id, c.block, c.slot, b.bits, c.text_hash, c.title_words,"
            " c.abstract_words FROM term_counts c JOIN term_blocks b ON b.block = c.block"
            " WHERE b.key = ? AND c.paper_id IN ({marks})"
        )
        return {
            pid: KeptCounts(block, slot, bits, bytes(text), tw, aw)
            for pid, block, slot, bits, text, tw, aw in rows_in(self._db, sql, ids, (key,))
        }

    def posting_rows(self, cells: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The rows of these (block, bucket) pairs (missing ones: a bucket without features)."""
        sql = "SELECT cell, data FROM term_postings WHERE cell IN ({marks})"
        wanted = [block * CELLS + bucket for block, bucket in cells]
        return {divmod(cell, CELLS): bytes(data) for cell, data in rows_in(self._db, sql, wanted)}

    def paper_search(self, ids: Sequence[str], key: str) -> dict[str, bytes]:
        """The search rows (`rank.searchrows`) of these papers' blobs made under `key`
        (papers without one are left out: their blobs stand for them)."""
        sql = "SELECT paper_id, data FROM paper_search WHERE key = ? AND paper_id IN ({marks})"
        return {pid: bytes(data) for pid, data in rows_in(self._db, sql, ids, (key,))}

    def backfill_postings(self, papers: int = 4096) -> int:
        """Make the postings of up to `papers` more papers that were analysed before the
        store kept postings (after the upgrade to them), in arrival order, then their
        search rows (after the upgrade to those, schema 19); how many papers were looked
        at (0: none is left, and nothing more to do)."""
        unindexed = " LEFT JOIN term_counts c ON c.paper_id = p.id"
        done = self._backfill("backfill_from", unindexed, "c.paper_id IS NULL", papers)
        if done is not None:
            return done
        return self._backfill("search_from", "", "1", papers) or 0

    def _backfill(self, column: str, join: str, lacking: str, papers: int) -> int | None:
        """One batch of the backfill whose next row is `postings_state.<column>` (None:
        that backfill is done): the postings (`backfill_from`) or the search rows
        (`search_from`) of up to `papers` kept blobs whose papers match `lacking`, in
        arrival order; how many were looked at."""
        row = self._db.execute(f"SELECT {column} FROM postings_state").fetchone()
        if row is None or row[0] is None:
            return None
        found = self._db.execute(
            f"SELECT p.rowid, t.paper_id, t.key, t.data FROM papers p"
            f" JOIN paper_terms t ON t.paper_id = p.id{join}"
            f" WHERE p.rowid >= ? AND {lacking} ORDER BY p.rowid LIMIT ?",
            (row[0], papers),
        ).fetchall()
        by_key: dict[str, list[tuple[str, bytes]]] = {}
        for _, pid, key, data in found:
            by_key.setdefault(key, []).append((pid, bytes(data)))
        with self._transaction() as db:
            for key, blobs in by_key.items():
                if column == "backfill_from":
                    self._keep_postings(db, blobs, key)
                else:
                    _keep_search(db, blobs, key)
            after = found[-1][0] + 1 if len(found) == papers else None  # None: done
            db.execute(f"UPDATE postings_state SET {column} = ?", (after,))
        return len(found)

    def _keep_postings(self, db: Connection, blobs: Sequence[tuple[str, bytes]], key: str) -> None:
        """Index these papers' blobs (made under `key`) as new blocks, and keep their
        search rows, in transaction `db`; their earlier postings die, and a block left
        without papers goes."""
        from digest.rank.postings import make_blocks

        latest = dict(blobs)  # a paper given twice keeps its last blob, as paper_terms does
        forget_postings(db, list(latest))
        _keep_search(db, list(latest.items()), key)
        self._serialize(db, "postings")
        for block in make_blocks(latest.items()):
            # A new number, never one a deleted block had: a reader that found a paper's
            # block a moment ago never reads another block's rows for it.
            db.execute("UPDATE postings_state SET last_block = last_block + 1")
            (number,) = db.execute("SELECT last_block FROM postings_state").fetchone()
            db.execute(
                "INSERT INTO term_blocks (block, key, bits) VALUES (?, ?, ?)",
                (number, key, block.bits),
            )
            db.executemany(
                "INSERT INTO term_counts (paper_id, block, slot, text_hash, title_words,"
                " abstract_words) VALUES (?, ?, ?, ?, ?, ?)",
                [(pid, number, slot, text, tw, aw) for pid, slot, text, tw, aw in block.papers],
            )
            db.executemany(
                "INSERT INTO term_postings (cell, data) VALUES (?, ?)",
                [(number * CELLS + bucket, data) for bucket, data in block.rows],
            )


def _keep_search(db: Connection, blobs: Sequence[tuple[str, bytes]], key: str) -> None:
    """In transaction `db`: the search rows of these blobs (made under `key`), replacing
    the papers' earlier ones; a blob that makes none (a JSON one) leaves its paper none."""
    from digest.rank.searchrows import rows_of_blobs

    execute_in(db, "DELETE FROM paper_search WHERE paper_id IN ({marks})", [p for p, _ in blobs])
    db.executemany(
        "INSERT INTO paper_search (paper_id, key, data) VALUES (?, ?, ?)",
        [(pid, key, row) for pid, row in rows_of_blobs(blobs)],
    )


def forget_postings(db: Connection, ids: Sequence[str]) -> None:
    """In transaction `db`: these papers have no postings any more (their text changed,
    or they are kept again), and a block left without papers goes."""
    sql = "SELECT DISTINCT block FROM term_counts WHERE paper_id IN ({marks})"
    blocks = {block for (block,) in rows_in(db, sql, ids)}
    execute_in(db, "DELETE FROM term_counts WHERE paper_id IN ({marks})", ids)
    for block in blocks:
        if db.execute("SELECT 1 FROM term_counts WHERE block = ? LIMIT 1", (block,)).fetchone():
            continue
        db.execute(
            "DELETE FROM term_postings WHERE cell >= ? AND cell < ?",
            (block * CELLS, (block + 1) * CELLS),
        )
        db.execute("DELETE FROM term_blocks WHERE block = ?", (block,))
