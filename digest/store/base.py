"""The connection, transactions and migrations every part of the store shares."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from digest.errors import StoreError
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION


class StoreBase:
    """A papers-digest SQLite database (WAL mode). Use as a context manager."""

    _db: sqlite3.Connection

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._setup_with_retries()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path}: cannot open the store ({exc}); is it a papers-digest SQLite file?"
            ) from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store ({exc.strerror})") from None

    def _setup_with_retries(self, attempts: int = 60) -> None:
        """WAL mode and migrations. Switching a new file to WAL does not wait for a busy
        lock (SQLite answers "locked" at once when processes start together), so retry
        a bounded number of times."""
        for attempt in range(attempts):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 + 0.01 * attempt)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: write failed and was rolled back ({exc})") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this papers-digest "
                f"({SCHEMA_VERSION}); upgrade papers-digest"
            )
        for target in range(version, SCHEMA_VERSION):
            with self._transaction() as db:
                # Another process may have migrated since we looked (two commands starting
                # on a new store): under the write lock, look again.
                if db.execute("PRAGMA user_version").fetchone()[0] > target:
                    continue
                MIGRATIONS[target](db)
                db.execute(f"PRAGMA user_version = {target + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])


def iso(moment: datetime) -> str:
    """A stored time: UTC, ISO 8601, so that text comparison in SQL is time comparison."""
    return moment.astimezone(UTC).isoformat() if moment.tzinfo else moment.isoformat()
