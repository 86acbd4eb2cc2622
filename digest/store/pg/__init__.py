"""The store on PostgreSQL (psycopg 3), selected by `[store] url = "postgresql://..."`.

`PgStore` is a `Store`: the same mixins and SQL (see `store.base` for the seam), on
`PgBase` (connection, transactions, migrations under an advisory lock, dialect hooks)
and `PgDeliveries` (claims by COPY into month partitions, leases as advisory locks).
Imported only when a URL names PostgreSQL: psycopg is an optional dependency
(`pip install 'papers-digest[postgres]'`).
"""

from digest.store.pg.deliveries import PgDeliveries
from digest.store.pg.work import PgWorkQueue
from digest.store.sqlite import Store


class PgStore(PgWorkQueue, PgDeliveries, Store):
    """A papers-digest store in a PostgreSQL database. Use as a context manager."""


__all__ = ["PgStore"]
