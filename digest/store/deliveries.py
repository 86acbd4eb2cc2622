"""Deliveries, the sent-ledger and leases. Part of the store (the only SQL in the project).

A delivery row (subscriber, digest date) is claimed, with the digest's frozen content and
its papers added to the sent-ledger, in ONE transaction before any backend is called.
So a run killed at any point leaves either no claim (the next run claims it) or a
claim whose content the next run sends as it is: never two different digests.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from digest.model import Claim, Delivery, LastDigest, Outcome
from digest.store.base import Connection, StoreBase, iso, rows_in
from digest.store.lease import owner_is_dead
from digest.store.next_send import refresh_next_send

_COLUMNS = (
    "d.id, d.subscriber_id, s.email, d.digest_date, d.state, d.attempts, d.next_attempt_at,"
    " d.reason, d.window_start, d.window_end, d.content, d.created_at, d.updated_at, d.sent_at,"
    " d.papers_upto"
)
_FROM = "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"


class DeliveriesMixin(StoreBase):
    """Delivery rows, the per-subscriber sent-ledger, and named leases."""

    #: The latest digest of each of some readers (`{marks}`: their ids).
    _LAST_DIGESTS = (
        "SELECT d.subscriber_id, d.digest_date, d.window_end, d.papers_upto"
        " FROM subscribers s JOIN deliveries d ON d.rowid = (SELECT rowid FROM deliveries"
        " WHERE subscriber_id = s.id ORDER BY digest_date DESC LIMIT 1)"
        " WHERE s.id IN ({marks})"
    )

    def claim_deliveries(
        self,
        claims: Sequence[Claim],
        now: datetime,
        *,
        then: Callable[[Connection, list[str]], None] | None = None,
    ) -> list[str]:
        """Record pending deliveries and mark their papers sent; returns the delivery ids
        of those that were new (the ones this call claimed), in the order given.

        A claim that exists already (the same delivery id, or the same subscriber and day)
        is skipped; the others are written with their sent-ledger rows and item records in
        one transaction: all or none land. An item record many claims share is written
        once (records are named by a hash of their content: the same key, the same text).
        `then(db, new ids)` runs inside that transaction (a worker defers the send jobs
        of what it claimed: both commit, or neither).
        """
        if not claims:
            return []
        self._prepare_claims(claims)
        with self._transaction() as db:
            new = self._write_claims(db, first_of_each(claims, self._claimed(db, claims)), iso(now))
            records = {k: v for c in new for k, v in c.records.items()}
            self._insert_records(db, records)
            refresh_next_send(db, [c.subscriber_id for c in new], now)  # a day (week) later
            if then is not None and new:
                then(db, [c.delivery_id for c in new])
        return [c.delivery_id for c in new]

    def _prepare_claims(self, claims: Sequence[Claim]) -> None:
        """What must exist before claims are written (PostgreSQL: their partitions)."""

    def _write_claims(self, db: Connection, new: list[Claim], at: str) -> list[Claim]:
        """Write the claims found new, inside the claim's transaction; those written."""
        db.executemany(
            "INSERT INTO deliveries (id, subscriber_id, digest_date, state, window_start,"
            " window_end, content, created_at, updated_at, papers_upto, paper_ids)"
            " VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
            [(*claim_values(c), at, at, *claim_ledger(c)) for c in new],
        )
        return new

    def _insert_records(self, db: Connection, records: dict[str, str]) -> None:
        """Write the item records the new claims refer to (one that exists stays)."""
        db.executemany(
            "INSERT OR IGNORE INTO frozen_items (key, item) VALUES (?, ?)", records.items()
        )

    @staticmethod
    def _claimed(db: Connection, claims: Sequence[Claim]) -> set[object]:
        """Which of these claims exist already: their delivery ids and (subscriber id,
        day) pairs found in the table."""
        ids = [c.delivery_id for c in claims]
        sql = "SELECT id FROM deliveries WHERE id IN ({marks})"
        taken: set[object] = {r[0] for r in rows_in(db, sql, ids)}
        by_day: dict[date, list[int]] = {}
        for c in claims:
            by_day.setdefault(c.digest_date, []).append(c.subscriber_id)
        sql = (
            "SELECT subscriber_id FROM deliveries"
            " WHERE digest_date = ? AND subscriber_id IN ({marks})"
        )
        for day, subscribers in by_day.items():
            taken.update((r[0], day) for r in rows_in(db, sql, subscribers, (day.isoformat(),)))
        return taken

    def record_attempts(self, outcomes: Iterable[Outcome], now: datetime) -> None:
        """Store backend outcomes in one transaction (each counts as one attempt)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET state = ?, reason = ?, next_attempt_at = ?,"
                " attempts = attempts + 1, updated_at = ?,"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END"
                " WHERE id = ? AND state IN ('pending', 'retry')",
                [
                    (
                        o.state,
                        o.reason,
                        iso(o.next_attempt_at) if o.next_attempt_at else None,
                        iso(now),
                        o.state,
                        iso(now),
                        o.delivery_id,
                    )
                    for o in outcomes
                ],
            )

    def due_delivery_ids(self, now: datetime) -> list[str]:
        """Ids of pending deliveries, and of retries whose time has come, oldest first."""
        rows = self._db.execute(
            "SELECT id FROM deliveries WHERE state = 'pending'"
            " OR (state = 'retry' AND next_attempt_at <= ?) ORDER BY created_at, id",
            (iso(now),),
        )
        return [r[0] for r in rows]

    def deliveries_by_id(self, ids: list[str]) -> list[Delivery]:
        """The deliveries with these ids, in the order given (a page of a big run)."""
        found = {
            d.id: d
            for d in self._deliveries(f"WHERE d.id IN ({','.join('?' * len(ids))})", tuple(ids))
        }
        return [found[i] for i in ids if i in found]

    def frozen_items(self, keys: Sequence[str]) -> dict[str, str]:
        """The shared item records these keys name (what compact claims refer to)."""
        wanted = list(dict.fromkeys(keys))
        sql = "SELECT key, item FROM frozen_items WHERE key IN ({marks})"
        return {str(key): str(item) for key, item in rows_in(self._db, sql, wanted)}

    def deliveries(self, state: str | None = None) -> list[Delivery]:
        """All deliveries (or those in `state`), newest first."""
        if state:
            return self._deliveries(
                "WHERE d.state = ? ORDER BY d.digest_date DESC, s.email", (state,)
            )
        return self._deliveries("ORDER BY d.digest_date DESC, s.email", ())

    def delivery_for(self, subscriber_id: int, digest_date: date) -> Delivery | None:
        rows = self._deliveries(
            "WHERE d.subscriber_id = ? AND d.digest_date = ?",
            (subscriber_id, digest_date.isoformat()),
        )
        return rows[0] if rows else None

    def last_delivery(self, subscriber_id: int) -> Delivery | None:
        rows = self._deliveries(
            "WHERE d.subscriber_id = ? ORDER BY d.digest_date DESC LIMIT 1", (subscriber_id,)
        )
        return rows[0] if rows else None

    def last_digests(self, subscriber_ids: Sequence[int]) -> dict[int, LastDigest]:
        """These readers' latest digests (date, window end, rows): one index seek each."""
        sql = self._LAST_DIGESTS
        return {
            r[0]: LastDigest(r[0], date.fromisoformat(r[1]), datetime.fromisoformat(r[2]), r[3])
            for r in rows_in(self._db, sql, list(dict.fromkeys(subscriber_ids)))
        }

    def claimed_since(self, day: date) -> set[tuple[int, date]]:
        """(subscriber id, digest date) of every delivery dated `day` or later."""
        return {
            (r[0], date.fromisoformat(r[1]))
            for r in self._db.execute(
                "SELECT subscriber_id, digest_date FROM deliveries WHERE digest_date >= ?",
                (day.isoformat(),),
            )
        }

    def sent_pairs(self, paper_ids: Sequence[str], after_row: int) -> tuple[array[int], array[int]]:
        """Who was sent which of these papers, compactly: parallel arrays of subscriber
        ids and positions in `paper_ids` (a week of a big list's ledgers is millions of
        pairs: as arrays, 16 bytes each, not a set of strings per reader).

        `paper_ids` are papers of rows after `after_row`: only digests that considered
        such a row (papers_upto > after_row) can hold them, so only their ledgers are
        read. (Rows never change: a paper keeps its row when it is updated.)
        """
        position: dict[str, int] = {}
        for i, pid in enumerate(paper_ids):
            position.setdefault(pid, i)
        readers, papers = array("q"), array("q")
        rows = self._db.execute(
            "SELECT subscriber_id, paper_ids FROM deliveries"
            " WHERE (papers_upto > ? OR papers_upto IS NULL) AND paper_ids != '[]'",
            (after_row,),
        )
        for sid, ledger in rows:
            found = [position[p] for p in json.loads(ledger) if p in position]
            readers.extend([sid] * len(found))
            papers.extend(found)
        return readers, papers

    def sent_paper_ids(self, subscriber_id: int) -> set[str]:
        """Every paper ever claimed for this subscriber (never sent twice)."""
        rows = self._db.execute(
            "SELECT paper_ids FROM deliveries WHERE subscriber_id = ?", (subscriber_id,)
        )
        return {pid for (ledger,) in rows for pid in json.loads(ledger)}

    def _deliveries(self, where: str, args: tuple[object, ...]) -> list[Delivery]:
        return [_delivery(r) for r in self._db.execute(f"SELECT {_COLUMNS} {_FROM} {where}", args)]

    # -- leases -------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, owner: str, now: datetime, ttl: timedelta, *, steal_from_dead: bool = True
    ) -> str | None:
        """Take the named lease; returns None on success, else the current owner.

        A lease past its expiry is free. With `steal_from_dead`, a lease held by a
        process of this host that no longer runs is free too (a killed run).
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT owner, expires_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row["owner"] != owner:
                expired = datetime.fromisoformat(row["expires_at"]) <= now
                if not expired and not (steal_from_dead and owner_is_dead(row["owner"])):
                    return str(row["owner"])
            db.execute(
                "INSERT OR REPLACE INTO locks (name, owner, expires_at) VALUES (?, ?, ?)",
                (name, owner, iso(now + ttl)),
            )
        return None

    def release_lease(self, name: str, owner: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def claim_values(c: Claim) -> tuple[object, ...]:
    """A claim's id, reader, day, window start and end, and content, as stored."""
    return (
        c.delivery_id,
        c.subscriber_id,
        c.digest_date.isoformat(),
        iso(c.window_start) if c.window_start else None,
        iso(c.window_end),
        c.content,
    )


def claim_ledger(c: Claim) -> tuple[object, ...]:
    """A claim's high-water mark and sent-ledger (the paper ids, JSON), as stored."""
    return (c.papers_upto, json.dumps(c.paper_ids, ensure_ascii=False))


def first_of_each(claims: Sequence[Claim], taken: set[object]) -> list[Claim]:
    """The claims whose delivery id and (subscriber, day) are not `taken`, nor those of
    an earlier claim in the list (a claim listed twice: its first entry stands)."""
    new = []
    for c in claims:
        pair = (c.subscriber_id, c.digest_date)
        if pair not in taken and c.delivery_id not in taken:
            taken.update((pair, c.delivery_id))
            new.append(c)
    return new


def _delivery(r: Any) -> Delivery:
    return Delivery(
        id=r["id"],
        subscriber_id=r["subscriber_id"],
        email=r["email"],
        digest_date=date.fromisoformat(r["digest_date"]),
        state=r["state"],
        attempts=r["attempts"],
        next_attempt_at=_time(r["next_attempt_at"]),
        reason=r["reason"],
        window_start=_time(r["window_start"]),
        window_end=datetime.fromisoformat(r["window_end"]),
        content=r["content"],
        created_at=datetime.fromisoformat(r["created_at"]),
        updated_at=datetime.fromisoformat(r["updated_at"]),
        sent_at=_time(r["sent_at"]),
        papers_upto=r["papers_upto"],
    )
