"""The PostgreSQL side of the store's base: connecting, transactions, migrations under an
advisory lock, the dialect hooks, and the unsubscribe queue (not needed here).

`PgBase` overrides what `store.base.StoreBase` does with a SQLite file; the mixins' SQL
runs unchanged on `PgConnection`. Each store holds one connection in autocommit mode
(a read is its own snapshot, as a SQLite read outside a transaction) and every write runs
in `conn.transaction()`: committed at the end of the block, rolled back on any error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg

from digest.errors import StoreError
from digest.store.base import DEFAULT_TIMEOUT, Connection
from digest.store.journal import JournalMixin, QueuedUnsubscribe
from digest.store.pg.connection import PgConnection, check_url, pg_store_error, redacted
from digest.store.pg.schema import PG_MIGRATIONS, VERSION_TABLE
from digest.store.schema import SCHEMA_VERSION


def lock_key(name: str) -> int:
    """A stable 64-bit advisory lock key for `name` (per database, as advisory locks are)."""
    digest = hashlib.blake2b(f"papers-digest:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgBase(JournalMixin):
    """A papers-digest store in a PostgreSQL database, named by a `postgresql://` URL."""

    _DRIVER_ERRORS: ClassVar[tuple[type[Exception], ...]] = (psycopg.Error,)
    _db: PgConnection  # what Connection is, here

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        check_url(url)
        self.url = url
        self.location = url
        self.where = redacted(url)
        self.timeout = timeout
        self.read_only = False
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(timeout)))
        except psycopg.Error as exc:
            raise pg_store_error(url, "cannot connect to the PostgreSQL server", exc) from None
        self._db = PgConnection(conn)
        try:
            # The codec's times are UTC; a lock wait as long as SQLite's busy timeout.
            self._db.execute(f"SET TIME ZONE 'UTC'; SET lock_timeout = {int(timeout * 1000)}")
            self._migrate()
        except BaseException as exc:
            conn.close()
            if isinstance(exc, psycopg.Error):
                raise self._translate("cannot open the store", exc) from None
            raise

    def close(self) -> None:
        """Close the connection (a closed store cannot be used again)."""
        self._db.close()

    def _translate(self, what: str, exc: Exception) -> StoreError:
        assert isinstance(exc, psycopg.Error)
        return pg_store_error(self.url, what, exc)

    @contextmanager
    def _transaction(self, what: str = "write") -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any exception
        (psycopg errors become StoreError)."""
        try:
            with self._db.conn.transaction():
                yield self._db
        except psycopg.Error as exc:
            raise self._translate(f"{what} failed and was rolled back", exc) from exc

    def _migrate(self) -> None:
        """Bring the schema up to date in one transaction, under an advisory lock: the
        first of several processes starting on a new database makes it, the others wait
        for it and find it made. An up-to-date database is only read (no lock)."""
        found = self._user_version()
        self._refuse_newer(found)
        if found == SCHEMA_VERSION:
            return
        with self._transaction("upgrading the schema") as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key("migrations"),))
            db.execute(VERSION_TABLE)
            version = self._user_version()
            self._refuse_newer(version)
            while version < SCHEMA_VERSION:
                target, step = PG_MIGRATIONS[version]
                step(db)
                version = target
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def _user_version(self) -> int:
        exists = self._db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if not exists[0]:
            return 0
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    # -- the dialect hooks (see store.base) ------------------------------------------------

    def _serialize(self, db: Connection, what: str) -> None:
        """Writers of `what` take turns until this transaction ends (a lock of its own,
        so readers and other writers are not held up)."""
        db.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(f"writers:{what}"),))

    @staticmethod
    def _day_of(column: str) -> str:
        return f"({column} AT TIME ZONE 'UTC')::date"

    @staticmethod
    def _any_of(values: Sequence[Any]) -> tuple[str, Any]:
        return " = ANY(?)", list(values)

    # -- the unsubscribe queue: a server has no single write lock to wait for --------------

    def queue_unsubscribe(self, entry: QueuedUnsubscribe) -> None:
        """Apply the unsubscribe at once (it is queued beside a SQLite file only because
        another process may hold that file's one write lock)."""
        self._apply([entry])

    def apply_queued_unsubscribes(self) -> int:
        """Nothing is ever queued beside a PostgreSQL store: 0."""
        return 0

    def _apply_on_open(self) -> None:
        return None
