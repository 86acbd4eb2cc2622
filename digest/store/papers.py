"""Papers: insert-or-merge, listing. Part of the store (the only SQL in the project).

Papers are keyed by a stable id (arXiv id when known, else a hash of the folded title
and the link) and found again by arXiv id, DOI and folded title (`store.merge` decides
which records are one paper), so `Met$^2$Net` and `Met^2Net` are one row while two papers
that share a title are two. Merging two records of a paper keeps the richer, field by field.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from digest.codec import PAPER_COLUMNS, paper_from_row, paper_row, papers_from_cells
from digest.errors import StoreError
from digest.model import FetchRecord, Paper
from digest.store.base import Connection, StoreBase, iso, rows_in
from digest.store.merge import Same, merge, sameness, storable
from digest.store.postings import forget_postings
from digest.text import fold_title

__all__ = ["FetchStateMixin", "IngestCounts", "PapersMixin", "merge"]

_COLUMNS = ", ".join(PAPER_COLUMNS)
_FIRST_SEEN = PAPER_COLUMNS.index("first_seen")
_MARKS = ",".join("?" * (len(PAPER_COLUMNS) + 2))
_SET = ", ".join(f"{c}=?" for c in PAPER_COLUMNS if c != "id")


@dataclass(frozen=True, slots=True)
class IngestCounts:
    """What one `add_papers` call did."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    #: (the record's title, the stored paper's id) of each merge made on the title alone:
    #: nothing (arXiv id, DOI, first author, link) told the two apart, or confirmed them.
    title_merges: tuple[tuple[str, str], ...] = ()

    def __add__(self, other: IngestCounts) -> IngestCounts:
        return IngestCounts(
            self.new + other.new,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.title_merges + other.title_merges,
        )


class PapersMixin(StoreBase):
    """Paper rows."""

    # -- papers ---------------------------------------------------------------

    def add_papers(
        self, papers: Iterable[Paper], *, arrived_at: datetime | None = None
    ) -> IngestCounts:
        """Insert or merge papers in one transaction; returns what changed.

        A paper already known (same id, same arXiv id or same folded title) is merged:
        the richer value of each field wins, sources are united, first/last seen widen.
        A new row remembers `arrived_at` (the ingest's now; default: its first_seen): what
        is new to a reader is what arrived after their last digest.
        """
        counts = IngestCounts()
        with self._transaction() as db:
            self._serialize(db, "papers")  # rows are arrival order: one ingest at a time
            for paper in papers:
                counts += self._add_one(db, storable(paper), arrived_at)
        return counts

    def _add_one(self, db: Connection, paper: Paper, arrived_at: datetime | None) -> IngestCounts:
        folded = fold_title(paper.title)
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM papers WHERE id = ? OR folded_title = ?"
            " OR arxiv_id = ? OR doi = ? ORDER BY rowid",
            (paper.id, folded, paper.arxiv_id, paper.doi),
        ).fetchall()
        found = [(why, row) for row in rows if (why := sameness(paper_from_row(row), paper))]
        if not found:
            if paper.revision:
                # A revision of a paper we never saw (arXiv "replace"): not new, skip it.
                return IngestCounts(unchanged=1)
            row = _to_row(paper)
            arrived = iso(arrived_at) if arrived_at else row[PAPER_COLUMNS.index("first_seen")]
            db.execute(
                f"INSERT INTO papers ({_COLUMNS}, folded_title, arrived_at) VALUES ({_MARKS})",
                (*row, folded, arrived),
            )
            self._add_sources(db, paper.id, paper.sources)
            return IngestCounts(new=1)
        why, row = min(found, key=lambda pair: pair[0])  # the surest; the oldest of equals
        old = paper_from_row(row)
        merged = merge(old, paper)
        added_sources = self._add_sources(db, old.id, paper.sources)
        noted = ((paper.title, old.id),) if why is Same.TITLE_ALONE else ()
        if merged == old:
            counts = IngestCounts(updated=1) if added_sources else IngestCounts(unchanged=1)
            return replace(counts, title_merges=noted)
        db.execute(f"UPDATE papers SET {_SET} WHERE id=?", (*_to_row(merged)[1:], old.id))
        if (merged.title, merged.abstract) != (old.title, old.abstract):  # analyse it anew
            db.execute("DELETE FROM paper_terms WHERE paper_id = ?", (old.id,))
            forget_postings(db, [old.id])
            db.execute("DELETE FROM paper_vectors WHERE paper_id = ?", (old.id,))
        return IngestCounts(updated=1, title_merges=noted)

    @staticmethod
    def _add_sources(db: Connection, paper_id: str, sources: Iterable[str]) -> int:
        added = 0
        for source in sources:
            cur = db.execute(
                "INSERT INTO paper_sources (paper_id, source) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (paper_id, source),
            )
            added += cur.rowcount
        return added

    def papers(self, since: date | datetime | None = None) -> list[Paper]:
        """All papers first seen on or after `since` (all when None), newest first."""
        sql = f"SELECT {_COLUMNS} FROM papers"
        args: tuple[object, ...] = ()
        if since is not None:
            sql += " WHERE first_seen >= ?"
            args = (iso(since) if isinstance(since, datetime) else since.isoformat(),)
        sql += " ORDER BY first_seen DESC, id"
        rows = self._db.execute(sql, args).fetchall()
        # Some days of a big store: only their sources; the whole store: one pass over all.
        sources = self._sources() if since is None else self._sources_of([r["id"] for r in rows])
        return [paper_from_row(row, tuple(sources.get(row["id"], ()))) for row in rows]

    def paper(self, paper_id: str) -> Paper | None:
        """The stored paper with this id, or None."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM papers WHERE id = ?", (paper_id,)
        ).fetchone()
        if row is None:
            return None
        return paper_from_row(row, tuple(self._sources_of([paper_id]).get(paper_id, ())))

    def papers_between(self, low: date, high: date) -> list[Paper]:
        """The papers first seen (UTC) on a day from `low` up to, not including, `high`,
        as `papers` gives them: a publish reads a year a month at a time."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM papers WHERE first_seen >= ? AND first_seen < ?",
            (low.isoformat(), high.isoformat()),
        ).fetchall()
        # `papers`' order (first_seen DESC, id), sorted here: SQLite would sort whole rows
        # (a month's abstracts) in a temporary table. Text compares alike in both (UTF-8
        # byte order is code point order), and Python's sorts are stable.
        rows.sort(key=operator.itemgetter(0))  # id
        rows.sort(key=operator.itemgetter(_FIRST_SEEN), reverse=True)
        # The rows hold PAPER_COLUMNS only, in order (id first).
        return papers_from_cells(rows, self._sources_of([r[0] for r in rows]))

    def paper_days(self, since: date | None = None) -> list[date]:
        """The UTC days on which stored papers were first seen (from `since`), oldest
        first: what a publish plans before it reads any paper."""
        rows = self._db.execute(
            f"SELECT DISTINCT {self._day_of('first_seen')} FROM papers"
            + (" WHERE first_seen >= ? ORDER BY 1" if since else " ORDER BY 1"),
            (since.isoformat(),) if since else (),
        ).fetchall()
        return [date.fromisoformat(r[0]) for r in rows]

    def arrival_days(self, low: int, high: int) -> list[date]:
        """The UTC days first seen of the rows after `low` up to `high`, oldest first:
        which days a publish must read again, without reading those papers."""
        rows = self._db.execute(
            f"SELECT DISTINCT {self._day_of('first_seen')} FROM papers"
            " WHERE rowid > ? AND rowid <= ? ORDER BY 1",
            (low, high),
        ).fetchall()
        return [date.fromisoformat(r[0]) for r in rows]

    def newest_paper_row(self) -> int:
        """The row number of the newest paper (rows only grow): a digest's high-water mark."""
        return int(self._db.execute("SELECT coalesce(max(rowid), 0) FROM papers").fetchone()[0])

    def row_arrived_by(self, moment: datetime) -> int:
        """The newest row that had arrived at `moment` (0 when none): where the papers that
        arrived after `moment` begin."""
        found = self._db.execute(
            "SELECT coalesce(max(rowid), 0) FROM papers WHERE arrived_at <= ?", (iso(moment),)
        ).fetchone()[0]
        return int(found)

    def arrivals(self, low: int, high: int) -> list[tuple[int, Paper]]:
        """(row, paper) for the rows after `low` up to `high`, in arrival order."""
        rows = self._db.execute(
            f"SELECT rowid, {_COLUMNS} FROM papers WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
            (low, high),
        ).fetchall()
        sources = self._sources_of([r["id"] for r in rows])
        return [(int(r[0]), paper_from_row(r, tuple(sources.get(r["id"], ())))) for r in rows]

    def _sources_of(self, ids: list[str]) -> dict[str, list[str]]:
        """The sources of these papers only (a day's papers, not the whole store)."""
        sources: dict[str, list[str]] = {}
        sql = (
            "SELECT paper_id, source FROM paper_sources WHERE paper_id IN ({marks})"
            " ORDER BY paper_id, source"
        )
        for pid, source in rows_in(self._db, sql, ids):
            sources.setdefault(pid, []).append(source)
        return sources

    def _sources(self) -> dict[str, list[str]]:
        sources: dict[str, list[str]] = {}
        for pid, source in self._db.execute(
            "SELECT paper_id, source FROM paper_sources ORDER BY paper_id, source"
        ):
            sources.setdefault(pid, []).append(source)
        return sources

    def count_papers(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM papers").fetchone()[0])

    def newest_arrival(self) -> datetime | None:
        """When the most recent paper arrived in this store (None when it holds none): what
        `digest rank` names when its window is empty."""
        found = self._db.execute("SELECT max(arrived_at) FROM papers").fetchone()[0]
        if not found:
            return None
        moment = datetime.fromisoformat(found)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # stored as UTC


def _to_row(p: Paper) -> tuple[object, ...]:
    """The row of a paper to store: a paper seen only as last_seen counts as first seen then."""
    seen = p.first_seen or p.last_seen
    if seen is None:
        raise StoreError(f"paper {p.id!r} has no first_seen time")
    return paper_row(replace(p, first_seen=seen, last_seen=p.last_seen or seen))


class FetchStateMixin(StoreBase):
    """Validators (ETag/Last-Modified) and the last outcome of each URL source."""

    def fetch_state(self, source: str) -> FetchRecord | None:
        """The URL and validators last stored for `source`, or None."""
        row = self._db.execute(
            "SELECT url, state FROM fetch_state WHERE source = ?", (source,)
        ).fetchone()
        return FetchRecord(row["url"], row["state"]) if row else None

    def save_fetch_state(
        self, source: str, url: str, state: str, now: datetime, status: str, error: str = ""
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO fetch_state (source, url, state, fetched_at, status, error)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET url = excluded.url,"
                " state = excluded.state, fetched_at = excluded.fetched_at,"
                " status = excluded.status, error = excluded.error",
                (source, url, state, iso(now), status, error),
            )
