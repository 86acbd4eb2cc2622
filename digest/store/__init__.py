"""The SQLite store: the only package that speaks SQL.

One `Store` object per connection, assembled from one part per domain (papers,
subscribers, deliveries) over a shared base (connection, transactions, migrations).
Every write runs in one transaction: a failure rolls the whole batch back. Every public
method and property (of the base, the mixins and `Store`) turns a sqlite3 error into one
`StoreError` line, by being wrapped when its class is made: see `store.base`.
"""

from pathlib import Path

from digest.store.base import DEFAULT_TIMEOUT
from digest.store.deliveries import DeliveriesMixin
from digest.store.journal import JournalMixin, QueuedUnsubscribe
from digest.store.papers import FetchStateMixin, IngestCounts, PapersMixin, merge
from digest.store.ratings import RatingsMixin
from digest.store.readers import ReaderPagesMixin
from digest.store.schema import SCHEMA_VERSION
from digest.store.subscribers import SubscribersMixin, UpsertCounts
from digest.store.terms import TermsMixin
from digest.store.vectors import VectorsMixin


class Store(
    PapersMixin,
    TermsMixin,
    VectorsMixin,
    SubscribersMixin,
    ReaderPagesMixin,
    RatingsMixin,
    DeliveriesMixin,
    FetchStateMixin,
    JournalMixin,
):
    """A papers-digest SQLite database (WAL mode). Use as a context manager.

    Opening one applies the unsubscribes queued beside it while it was busy (briefly:
    see `store.journal`).
    """

    def __init__(self, path: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(path, timeout=timeout)
        try:
            self._apply_on_open()
        except BaseException:
            self.close()
            raise


__all__ = [
    "SCHEMA_VERSION",
    "IngestCounts",
    "QueuedUnsubscribe",
    "Store",
    "UpsertCounts",
    "merge",
]
