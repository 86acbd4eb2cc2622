"""`Store`: the mixins (one per domain) on the SQLite base; `store.pg.PgStore` puts the
same ones on PostgreSQL. Import it from `digest.store`."""

from pathlib import Path

from digest.store.base import DEFAULT_TIMEOUT
from digest.store.day_index import DayIndexMixin
from digest.store.deliveries import DeliveriesMixin
from digest.store.journal import JournalMixin
from digest.store.papers import FetchStateMixin, PapersMixin
from digest.store.ratings import RatingsMixin
from digest.store.readers import DueReadersMixin, ReaderPagesMixin
from digest.store.related import RelatedMixin
from digest.store.terms import TermsMixin
from digest.store.upserts import UpsertsMixin
from digest.store.vectors import VectorsMixin


class Store(
    PapersMixin,
    TermsMixin,
    DayIndexMixin,
    VectorsMixin,
    RelatedMixin,
    DueReadersMixin,
    UpsertsMixin,
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
