"""The store: the only package that speaks SQL (SQLite by default, PostgreSQL by URL).

One `Store` object per connection, assembled from one part per domain (papers,
subscribers, deliveries) over a shared base (connection, transactions, migrations).
Every write runs in one transaction: a failure rolls the whole batch back. Every public
method and property (of the base, the mixins and `Store`) turns a sqlite3 error into one
`StoreError` line, by being wrapped when its class is made: see `store.base`.

`open_store(location)` opens either: a path is a SQLite file (`Store`), a
`postgresql://` URL a PostgreSQL database (`store.pg.PgStore`, a `Store` too, on the
same mixins).
"""

from pathlib import Path

from digest.errors import ConfigError
from digest.store.base import DEFAULT_TIMEOUT
from digest.store.journal import QueuedUnsubscribe
from digest.store.papers import IngestCounts, merge
from digest.store.schema import SCHEMA_VERSION
from digest.store.sqlite import Store
from digest.store.upserts import UpsertCounts


def is_store_url(location: Path | str) -> bool:
    """Whether `location` names a PostgreSQL database (`postgresql://...`), not a file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_store(location: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> Store:
    """The store at `location`: a SQLite file, or a PostgreSQL database by URL."""
    if not is_store_url(location):
        return Store(location, timeout=timeout)
    try:
        from digest.store.pg import PgStore
    except ImportError as exc:
        raise ConfigError(
            f"a PostgreSQL store needs psycopg ({exc.msg}); install it with"
            " pip install 'papers-digest[postgres]'"
        ) from None
    return PgStore(str(location), timeout=timeout)


__all__ = [
    "SCHEMA_VERSION",
    "IngestCounts",
    "QueuedUnsubscribe",
    "Store",
    "UpsertCounts",
    "is_store_url",
    "merge",
    "open_store",
]
