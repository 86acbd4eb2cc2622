"""Claims and leases on PostgreSQL: what works differently on a server shared by hosts.

Claims: a day's claims (one per reader, tens of thousands) go in with COPY into a staging
table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING id`: the rows
another process claimed first, even at the same moment on another host, are skipped by
the unique keys, not by a read before the write. The month partitions of `deliveries`
the claims need are made first, in a short transaction of their own (making one locks
the table for a moment: never inside a long claim). Rows go in sorted by (reader, day),
records by key: two claimers that meet on the same rows wait for one another in the
same order, never in a cycle (a deadlock, which PostgreSQL would break by failing one).

Leases: a session advisory lock (`pg_try_advisory_lock`), held on a connection of its
own that this process keeps until `release_lease` or its end. The server frees the lock
when that session ends, on whatever host the holder ran: a killed process frees it at
once (its socket closes), a vanished host within about a minute (TCP keepalives). The
`locks` table only records who holds which lease, for the message of one who waits.
A live holder keeps its lease however long it runs: `ttl` does not expire it here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from digest.model import Claim
from digest.store.base import Connection, iso
from digest.store.deliveries import claim_ledger, claim_values
from digest.store.pg.base import PgBase, lock_key
from digest.store.pg.connection import PgConnection

_CLAIM_STAGING = (
    'CREATE TEMP TABLE IF NOT EXISTS claim_staging (id text COLLATE "C", subscriber_id bigint,'
    " digest_date date, window_start timestamptz, window_end timestamptz, content text,"
    " papers_upto bigint, paper_ids text) ON COMMIT DELETE ROWS"
)
_RECORD_STAGING = (
    'CREATE TEMP TABLE IF NOT EXISTS record_staging (key text COLLATE "C", item text)'
    " ON COMMIT DELETE ROWS"
)
#: Server-side keepalives for a lease's session: a holder whose host vanished (no FIN,
#: no RST) is noticed within about 30 + 3 x 10 seconds and its lease freed.
_KEEPALIVES = (
    "SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3"
)


@dataclass
class _Held:
    owner: str
    conn: psycopg.Connection[Any]


#: The leases this process holds: (store URL, lease name) -> holder and its session.
_HELD: dict[tuple[str, str], _Held] = {}
_HELD_LOCK = threading.Lock()


def _alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _month_after(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


class PgDeliveries(PgBase):
    """COPY-based claims into month partitions, and leases as advisory locks."""

    _db: PgConnection
    #: Each reader's latest digest: the newest row of (subscriber_id, digest_date)'s index,
    #: partitions read newest month first until one has a row.
    _LAST_DIGESTS = (
        "SELECT s.id, d.digest_date, d.window_end, d.papers_upto FROM subscribers s"
        " CROSS JOIN LATERAL (SELECT digest_date, window_end, papers_upto FROM deliveries"
        " WHERE subscriber_id = s.id ORDER BY digest_date DESC LIMIT 1) d"
        " WHERE s.id IN ({marks})"
    )

    def _prepare_claims(self, claims: Sequence[Claim]) -> None:
        """Make the month partitions these claims fall in, if they do not exist yet."""
        known: set[date] = self.__dict__.setdefault("_months", set())
        wanted = {c.digest_date.replace(day=1) for c in claims} - known
        exists = "SELECT to_regclass(?) IS NOT NULL"
        missing = [
            m
            for m in sorted(wanted)
            if not self._db.execute(exists, (f"deliveries_{m:%Y_%m}",)).fetchone()[0]
        ]
        if missing:
            with self._transaction("making a month of the deliveries table") as db:
                db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key("partitions"),))
                for month in missing:
                    db.execute(
                        f"CREATE TABLE IF NOT EXISTS deliveries_{month:%Y_%m} PARTITION OF"
                        f" deliveries FOR VALUES FROM ('{month}') TO ('{_month_after(month)}')"
                    )
        known.update(wanted)

    def _write_claims(self, db: Connection, new: list[Claim], at: str) -> list[Claim]:
        """COPY the claims into staging, insert those no one has claimed meanwhile (on
        another host: the unique keys decide, not the look before); those written."""
        assert isinstance(db, PgConnection)
        db.execute(_CLAIM_STAGING)
        db.copy_rows(
            "COPY claim_staging (id, subscriber_id, digest_date, window_start, window_end,"
            " content, papers_upto, paper_ids) FROM STDIN",
            ((*claim_values(c), *claim_ledger(c)) for c in new),
        )
        rows = db.execute(
            "INSERT INTO deliveries (id, subscriber_id, digest_date, state, window_start,"
            " window_end, content, created_at, updated_at, papers_upto, paper_ids)"
            " SELECT s.id, s.subscriber_id, s.digest_date, 'pending', s.window_start,"
            " s.window_end, s.content, ?::timestamptz, ?::timestamptz, s.papers_upto,"
            " s.paper_ids FROM claim_staging s"
            " WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = s.id)"
            " ORDER BY s.subscriber_id, s.digest_date"  # one order for all: no deadlock
            " ON CONFLICT DO NOTHING RETURNING id",
            (at, at),
        )
        claimed = {r[0] for r in rows}
        return [c for c in new if c.delivery_id in claimed]

    def _insert_records(self, db: Connection, records: dict[str, str]) -> None:
        """COPY the item records into staging, insert those not kept yet."""
        if not records:
            return
        assert isinstance(db, PgConnection)
        db.execute(_RECORD_STAGING)
        db.copy_rows("COPY record_staging (key, item) FROM STDIN", records.items())
        db.execute(
            "INSERT INTO frozen_items (key, item) SELECT key, item FROM record_staging"
            " ORDER BY key ON CONFLICT DO NOTHING"
        )

    # -- leases -------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, owner: str, now: datetime, ttl: timedelta, *, steal_from_dead: bool = True
    ) -> str | None:
        """Take the named lease; returns None on success, else the current owner.

        Held as a session advisory lock until `release_lease` or the end of this process
        (see the module's docstring); taking it again as its owner keeps it.
        `steal_from_dead` is moot: a dead holder's lease is free already.
        """
        key = (self.url, name)
        with _HELD_LOCK:
            held = _HELD.get(key)
            if held is not None and held.owner != owner:
                return held.owner  # another thread of this process
            if held is None or not _alive(held.conn):
                if held is not None:  # its session was lost (a server restart): anew
                    del _HELD[key]
                    held.conn.close()
                conn, holder = self._try_lock(name)
                if conn is None:
                    return holder
                _HELD[key] = _Held(owner, conn)
        with self._transaction("recording the lease holder") as db:
            db.execute(
                "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at",
                (name, owner, iso(now + ttl)),
            )
        return None

    def _try_lock(self, name: str) -> tuple[psycopg.Connection[Any] | None, str]:
        """Try the lease's lock on a new session: (that session, "") when taken, else
        (None, who holds it)."""
        conn = psycopg.connect(self.url, autocommit=True)
        try:
            conn.execute(_KEEPALIVES)
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (lock_key(f"lease:{name}"),)
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        if row is not None and row[0]:
            return conn, ""
        conn.close()
        found = self._db.execute("SELECT owner FROM locks WHERE name = ?", (name,)).fetchone()
        return None, str(found[0]) if found else "another process"

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up (closing its session frees the lock) if `owner` holds it."""
        with _HELD_LOCK:
            held = _HELD.get((self.url, name))
            if held is not None and held.owner == owner:
                del _HELD[(self.url, name)]
                held.conn.close()
        with self._transaction() as db:
            db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))
