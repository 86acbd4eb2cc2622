"""The connection, transactions, migrations and error translation the store shares.

Every public method and property of `StoreBase` and of every class built on it (the
mixins, `Store`) is wrapped when the class is created (`StoreBase.__init_subclass__`):
a `sqlite3.Error` leaves it as one `StoreError` line naming the file, what failed and
how to fix it, also while iterating over an iterator the method returns. So a method
added to a mixin is covered without doing anything; names starting with `_` are not
wrapped (they are called by public ones). Any other exception, a `StoreError` included,
passes through unchanged.

For the author of a new public method: nothing to do for the wrapping (static and class
methods are not wrapped: they have no connection; an object returned other than an
iterator, e.g. a context manager, is not covered once returned). Do add the method with
valid arguments to `CALLS` in tests/test_store_errors.py: a test fails until you do.

The SQL of the mixins is shared by both backends: SQLite (`StoreBase` here) and
PostgreSQL (`store.pg`, which overrides the connection, the transactions, the migrations
and a few hooks). The seam is small and explicit: `?` placeholders (the PostgreSQL
connection turns them into psycopg's), times as the codec's ISO text in both (typed
`timestamptz` columns in PostgreSQL, read back as that text), `rowid` as the arrival
order of papers (a column there), and the `_`-named hooks below where the two dialects
differ (`_serialize`, `_day_of`, `_any_of`, the claim and lease methods).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType
from typing import Any, ClassVar, Protocol, Self, cast

from digest.codec import time_text
from digest.errors import StoreBusy, StoreError
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION

#: Seconds to wait for another process's lock (SQLite's busy timeout), by default.
DEFAULT_TIMEOUT = 30.0


#: Values bound in one `IN (...)`: below SQLite's default limit of 999 parameters.
IN_CHUNK = 900


class Cursor(Protocol):
    """What the mixins use of a cursor (sqlite3's, or psycopg's through `store.pg`)."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the mixins use of a connection: `?` placeholders, rows by index and by name."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...


def rows_in(
    db: Connection, sql: str, values: Sequence[Any], before: Sequence[Any] = ()
) -> Iterator[Any]:
    """The rows of `sql` for all `values`, asked `IN_CHUNK` at a time: `{marks}` in `sql`
    stands for the `?, ?, ...` of one chunk; `before` is bound ahead of them."""
    for sql_chunk, args in _in_chunks(sql, values, before):
        # fetchall: the chunk's rows in one call, not a step of the cursor each
        yield from db.execute(sql_chunk, args).fetchall()


def execute_in(db: Connection, sql: str, values: Sequence[Any]) -> None:
    """`sql` (a DELETE or UPDATE whose `{marks}` stands for one chunk's `?, ?, ...`) for
    all `values`, `IN_CHUNK` at a time, as `rows_in` asks."""
    for sql_chunk, args in _in_chunks(sql, values, ()):
        db.execute(sql_chunk, args)


def _in_chunks(
    sql: str, values: Sequence[Any], before: Sequence[Any]
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        yield sql.replace("{marks}", ",".join("?" * len(chunk))), (*before, *chunk)


def explain(exc: sqlite3.Error) -> str:
    """What a sqlite3 error means for the user, and what to do about it, in one line."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    message = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in message:
        return "database is locked: another digest process holds it; try again"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return f"not a papers-digest store or corrupt ({message})"
    if name.startswith("SQLITE_READONLY"):
        return (
            f"the store is read-only ({message}); check the permissions of the file"
            " and of its directory"
        )
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return f"cannot open the file ({message}); check the path and its permissions"
    if name == "SQLITE_FULL":
        return "the disk is full; free some space and try again"
    if name.startswith("SQLITE_IOERR"):
        return f"disk I/O error ({message}); check the disk and try again"
    if "closed database" in message:
        return "the store was used after it was closed (a bug)"
    return " ".join(message.split())


def store_error(path: Path, what: str, exc: sqlite3.Error) -> StoreError:
    """The one-line error for `exc`: '<file>: <what>: <meaning; how to fix>' (a StoreBusy
    when another process held the lock: the caller may queue the work or try again)."""
    meaning = explain(exc)
    kind = StoreBusy if meaning.startswith("database is locked") else StoreError
    return kind(f"{path}: {what}: {meaning}")


def _iterate_translated(store: StoreBase, what: str, iterator: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from iterator
    except store._DRIVER_ERRORS as exc:
        raise store._translate(what, exc) from exc


def wrap_exceptions(method: Callable[..., Any], what: str = "") -> Callable[..., Any]:
    """`method` (of a StoreBase) with sqlite3 errors translated, also while iterating.

    `what` failed, says the message: by default, the method's name.
    """
    if getattr(method, "__store_wrapped__", False):
        return method
    what = what or f"{method.__name__}() failed"

    @functools.wraps(method)
    def wrapper(self: StoreBase, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except self._DRIVER_ERRORS as exc:
            raise self._translate(what, exc) from exc
        if isinstance(result, Iterator):  # a generator, a cursor: errors come when iterated
            return _iterate_translated(self, what, result)
        return result

    wrapper.__store_wrapped__ = True  # type: ignore[attr-defined]
    return wrapper


def _wrap_public_members(cls: type) -> None:
    """Wrap the public methods and properties defined in `cls` itself (not inherited:
    those were wrapped in the class that defines them)."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            wrapped = property(
                member.fget and wrap_exceptions(member.fget, f"reading {name} failed"),
                member.fset and wrap_exceptions(member.fset, f"setting {name} failed"),
                member.fdel and wrap_exceptions(member.fdel, f"deleting {name} failed"),
                member.__doc__,
            )
            setattr(cls, name, wrapped)
        elif isinstance(member, FunctionType):  # not static/class methods: no connection
            setattr(cls, name, wrap_exceptions(member))


def _create_private(path: Path) -> None:
    """Create the store file readable by its owner only (0600), if it does not exist:
    SQLite gives its -wal and -shm files the mode of the database file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _unwritable(path: Path) -> bool:
    """An existing store that this process may not write (file or directory)."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection. In WAL mode SQLite needs the -shm file even to read; where
    it cannot be made (a read-only directory or mount) nothing can write the file either,
    so it is opened as immutable."""
    uri = path.absolute().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None)
        db.execute("PRAGMA user_version").fetchone()
        return db
    except sqlite3.OperationalError:
        return sqlite3.connect(
            f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout, isolation_level=None
        )


class StoreBase:
    """A papers-digest SQLite database (WAL mode). Use as a context manager.

    `timeout` is how long, in seconds, to wait for another process holding the database
    before giving up with a StoreError ("database is locked").
    """

    _db: Connection
    #: The driver's errors, which every public method turns into a StoreError.
    _DRIVER_ERRORS: ClassVar[tuple[type[Exception], ...]] = (sqlite3.Error,)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _wrap_public_members(cls)

    def __init__(self, path: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = Path(path)
        #: What opens this store again (another process, a worker): its path here.
        self.location: Path | str = self.path
        #: How messages name the store: the file (a PostgreSQL URL without its password).
        self.where = str(self.path)
        self.timeout = timeout
        #: Opened for reading only: the file or its directory cannot be written (a
        #: read-only mount, a backup): reads work, a write is one "read-only" line.
        self.read_only = str(path) != ":memory:" and _unwritable(self.path)
        try:
            if self.read_only:
                db = _connect_read_only(self.path, timeout)
            else:
                if str(path) != ":memory:":
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    _create_private(self.path)
                db = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise store_error(self.path, "cannot open the store", exc) from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store ({exc.strerror})") from None
        self._db = db
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            self._setup_with_retries()
        except BaseException as exc:
            db.close()
            if isinstance(exc, sqlite3.Error):
                raise store_error(self.path, "cannot open the store", exc) from exc
            raise

    def _setup_with_retries(self) -> None:
        """WAL mode and migrations. Switching a new file to WAL does not wait for a busy
        lock (SQLite answers "locked" at once when processes start together), so retry
        for as long as the busy timeout."""
        deadline = time.monotonic() + self.timeout
        pause = 0.05
        while True:
            try:
                if self.read_only:  # nothing can be changed: only refuse what we cannot read
                    version = self._user_version()
                    self._refuse_newer(version)
                    if version < SCHEMA_VERSION:
                        raise StoreError(
                            f"{self.path}: the store is read-only and needs upgrading to "
                            f"schema {SCHEMA_VERSION}; make it writable and run any command"
                        )
                    return
                self._db.execute("PRAGMA journal_mode=WAL")
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause + 0.01, 0.5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a closed store cannot be used again)."""
        self._sqlite.close()

    @property
    def _sqlite(self) -> sqlite3.Connection:
        """The connection as what it is here (`_db` is typed for both dialects)."""
        return cast(sqlite3.Connection, self._db)

    def _translate(self, what: str, exc: Exception) -> StoreError:
        """The one-line StoreError for a driver error raised while doing `what`."""
        return store_error(self.path, what, cast(sqlite3.Error, exc))

    # -- where the dialects differ (PostgreSQL overrides these: store.pg) -----------------

    def _serialize(self, db: Connection, what: str) -> None:
        """Make the writers of `what` ("papers", "subscribers") take turns, inside a
        transaction: SQLite's write lock (BEGIN IMMEDIATE) already does."""

    @staticmethod
    def _day_of(column: str) -> str:
        """SQL for the UTC day (ISO text) of a time column."""
        return f"substr({column}, 1, 10)"

    @staticmethod
    def _any_of(values: Sequence[Any]) -> tuple[str, Any]:
        """SQL for "is one of `values`" (after a column) and the one parameter it binds."""
        return " IN (SELECT value FROM json_each(?))", json.dumps(list(values))

    @contextmanager
    def _transaction(self, what: str = "write") -> Iterator[Connection]:
        """One write transaction, holding the write lock from the start: committed when
        the block ends, rolled back on any exception (sqlite3 errors become StoreError)."""
        try:
            db = self._sqlite
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # A COMMIT that fails (busy past the timeout) leaves the transaction open;
                # SQLite rolls some failures back itself (a full disk, some I/O errors),
                # and a second ROLLBACK would fail and hide the first error.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise store_error(self.path, f"{what} failed and was rolled back", exc) from exc

    def _migrate(self) -> None:
        """Bring the schema up to date, one step (`schema.MIGRATIONS`) per transaction."""
        found = self._user_version()
        self._refuse_newer(found)
        for target in range(found, SCHEMA_VERSION):
            with self._transaction(f"upgrading the schema to version {target + 1}") as db:
                # Another process may have migrated since we looked (two commands starting
                # on a new store): under the write lock, look again.
                version = self._user_version()
                self._refuse_newer(version)
                if version > target:
                    continue
                MIGRATIONS[target](self._sqlite)
                db.execute(f"PRAGMA user_version = {target + 1}")

    def _user_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.where}: schema version {version} is newer than this papers-digest "
                f"({SCHEMA_VERSION}); upgrade papers-digest"
            )

    @property
    def installation_id(self) -> str:
        """This store's random id, made once with the store (schema version 11)."""
        row = self._db.execute("SELECT value FROM installation WHERE key = 'id'").fetchone()
        if row is None:  # only if someone deleted it: make a new one, once
            with self._transaction("making the installation id") as db:
                db.execute(
                    "INSERT INTO installation (key, value) VALUES ('id', ?) ON CONFLICT DO NOTHING",
                    (secrets.token_hex(16),),
                )
            row = self._db.execute("SELECT value FROM installation WHERE key = 'id'").fetchone()
        return str(row[0])

    @property
    def schema_version(self) -> int:
        """The schema version of the file (`PRAGMA user_version`)."""
        return self._user_version()


_wrap_public_members(StoreBase)  # __init_subclass__ covers the subclasses, not the base


#: A stored time: UTC, ISO 8601, so that text comparison in SQL is time comparison (the
#: codec's one form of a time).
iso = time_text
