"""The PostgreSQL connection as the shared store code sees it, and its errors in one line.

`PgConnection` gives the mixins what sqlite3 gives them (`store.base.Connection`):
`execute` and `executemany` with `?` placeholders (turned into psycopg's `%s` once per
statement text), rows readable by index and by column name, and times as the codec's
ISO text (`timestamptz` and `date` columns are read back as `2025-10-16T07:00:00+00:00`
and `2025-10-16`, exactly what SQLite holds), so one body of SQL and Python serves both.

The URL may carry a password; it is never printed: messages name `redacted(url)`, and a
driver message that would quote the password has it cut out (`explain`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Buffer, Loader
from psycopg.rows import RowMaker

from digest.config.checks import redacted_url as redacted
from digest.config.checks import url_password
from digest.errors import ConfigError, StoreBusy, StoreError
from digest.store.base import Cursor


def check_url(url: str) -> None:
    """Refuse a URL libpq cannot read (ConfigError, one line, no password in it)."""
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConfigError(
            f"{redacted(url)}: not a PostgreSQL URL libpq can read"
            f" ({scrub(str(exc), url)}); write it as postgresql://user@host:port/database"
        ) from None


def scrub(message: str, url: str) -> str:
    """A driver message on one line, with the URL's password (if any) cut out."""
    password = url_password(url)
    if password:
        message = message.replace(password, "***")
    return " ".join(message.split())


#: SQLSTATE classes and codes -> what they mean for the user and how to fix it.
_MEANINGS: tuple[tuple[str, str], ...] = (
    ("53100", "the server's disk is full; free some space and try again"),
    ("53", "the server is out of resources ({message}); try again later"),
    ("25006", "the database is read-only ({message}); connect to the primary server"),
    ("42501", "permission denied ({message}); grant the store's user its tables"),
    ("57P", "the server is shutting down or restarting ({message}); try again"),
    ("08", "lost the connection to the server ({message}); check that it runs"),
    ("28", "the server refused the login ({message}); check the user and password"),
)


def explain(exc: psycopg.Error, url: str) -> tuple[str, bool]:
    """What a psycopg error means, in one line (no password), and whether it is a wait
    for another process's lock (a StoreBusy: the caller may try again)."""
    message = scrub(str(exc), url)
    code = exc.sqlstate or ""
    if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.DeadlockDetected):
        return f"database is locked: another digest process holds it ({message}); try again", True
    if isinstance(exc, pg_errors.SerializationFailure):
        return f"another process changed the same rows ({message}); try again", True
    for prefix, meaning in _MEANINGS:
        if code.startswith(prefix):
            return meaning.format(message=message), False
    if isinstance(exc, psycopg.OperationalError) and not code:
        return f"lost the connection to the server ({message}); check that it runs", False
    return message, False


def pg_store_error(url: str, what: str, exc: psycopg.Error) -> StoreError:
    """'<url without password>: <what>: <meaning>' (a StoreBusy for a lock wait)."""
    meaning, busy = explain(exc, url)
    return (StoreBusy if busy else StoreError)(f"{redacted(url)}: {what}: {meaning}")


# -- rows and values ---------------------------------------------------------------------


class Row(tuple[Any, ...]):
    """A result row like sqlite3.Row: by index, by column name, unpacked as a tuple."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            key = self._index[key]
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@functools.lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})


def _row_factory(cursor: Any) -> RowMaker[Row]:
    description = cursor.description
    cls = _row_class(tuple(c.name for c in description) if description else ())
    return cls  # Row(values) makes the row


class _TimeTextLoader(Loader):
    """timestamptz -> the codec's ISO text (the session's time zone is UTC)."""

    def load(self, data: Buffer) -> str:
        return datetime.fromisoformat(bytes(data).decode()).isoformat()


class _DateTextLoader(Loader):
    """date -> ISO text (DateStyle ISO prints it so)."""

    def load(self, data: Buffer) -> str:
        return bytes(data).decode()


def _storable(value: Any) -> Any:
    """A parameter PostgreSQL accepts: text cannot hold NUL, so it becomes U+FFFD (as
    `store.merge.storable` replaces what SQLite cannot take)."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _params(values: Any) -> tuple[Any, ...]:
    return tuple(_storable(v) for v in values)


@functools.lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """The statement with psycopg's placeholders: `?` -> `%s` (a literal `%` doubled).
    The store's SQL has no `?` inside string literals."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConnection:
    """A psycopg connection (autocommit; `transaction()` for writes) with the sqlite3
    calling conventions the mixins use."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        conn.row_factory = _row_factory
        conn.adapters.register_loader("timestamptz", _TimeTextLoader)
        conn.adapters.register_loader("date", _DateTextLoader)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.conn.execute(pg_sql(sql), _params(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self.conn.cursor()
        rows = [_params(p) for p in parameters]
        if rows:
            cursor.executemany(pg_sql(sql), rows)
        return cursor

    def copy_rows(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """`COPY ... FROM STDIN` of these rows (text format: times as ISO text)."""
        with self.conn.cursor().copy(sql) as copy:
            for row in rows:
                copy.write_row(_params(row))

    def close(self) -> None:
        self.conn.close()
