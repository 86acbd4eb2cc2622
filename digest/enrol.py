"""Bulk subscriber import: a checked JSON Lines or CSV file into the store, and the
confirmation emails for the new addresses (`digest subscribers import`).

Split from `digest.pipeline` (which re-exports `import_subscribers` and `ImportReport`):
reading and checking the rows is `digest.bulk`; this is writing them a page at a time and
mailing each page's confirmations after it is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from digest.errors import DeliveryError

if TYPE_CHECKING:
    from digest import bulk
    from digest.config import Config
    from digest.deliver import Backend, OutgoingEmail, SendResult
    from digest.store import Store

__all__ = ["CONFIRMATION_BATCH", "ImportReport", "import_subscribers"]

ProgressFn = Callable[[int, int, str], None]

#: Confirmation emails handed to the backend at a time.
CONFIRMATION_BATCH = 500


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What `import_subscribers` did. Counts are addresses; `bad` are rows."""

    origin: str
    format: str  #: "jsonl" | "csv"
    rows: int  #: rows read, bad ones included
    bad: tuple[bulk.BadRow, ...]
    #: False when bad rows stopped the import (without `skip_invalid`): nothing written.
    imported: bool
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    #: Of `unchanged`: addresses that had unsubscribed, left so (an import never re-adds).
    kept_unsubscribed: int = 0
    confirmations: int = 0  #: confirmation emails the backend took ("sent")
    #: (address, "retry: why" | "failed: why") for each confirmation email not sent.
    unsent: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        sent = f"{self.confirmations} confirmation{'' if self.confirmations == 1 else 's'} sent"
        return (
            f"imported {self.origin}: {self.new} new, {self.changed} changed, "
            f"{self.unchanged} unchanged, {len(self.bad)} bad (skipped), {sent}"
        )


def import_subscribers(
    config: Config,
    store: Store,
    data: bytes,
    origin: str,
    now: datetime,
    *,
    confirmed: bool = False,
    skip_invalid: bool = False,
    open_backend: Callable[[], Backend],
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import a JSON Lines or CSV file of subscribers (`bulk.read_rows`) into the store.

    Every row is checked first: with a bad row and without `skip_invalid` nothing is
    written (the report lists the bad rows). Then the store writes the good rows a page at
    a time (`Store.upsert_subscribers`); a row that changes nothing writes nothing, and an
    address that has unsubscribed is left so. Without `confirmed`, each new address is
    pending and is mailed the confirmation link `subscribe` sends, in batches, after its
    page is committed: a message the backend refuses is reported, and the import stays.
    The backend from `open_backend` is opened before anything is written (so a mail
    setup error stops an import that would mail), and only then.
    """
    from digest import bulk
    from digest.links import link
    from digest.render.notices import confirmation_email
    from digest.store import UpsertCounts
    from digest.tokens import load_secret

    checked = bulk.read_rows(data, origin, progress=progress)
    report = ImportReport(
        origin, checked.format, len(checked.rows) + len(checked.bad), checked.bad, imported=False
    )
    if checked.bad and not skip_invalid:
        return report
    total = len({row.email for row in checked.rows})
    backend = open_backend() if checked.rows and not confirmed else None
    secret = b""
    counts = UpsertCounts()
    sent, unsent = 0, []
    try:
        for page in store.upsert_subscribers(
            checked.rows, now, confirmed=confirmed, resubscribe=False
        ):
            counts += replace(page, created=())  # mailed below, then let go
            pending = [sub for sub in page.created if sub.status == "pending"]
            if backend is not None and pending:
                secret = secret or load_secret(config)
                emails = [
                    confirmation_email(
                        config.delivery, sub, link(config, secret, "confirm", sub, now), now
                    )
                    for sub in pending
                ]
                for start in range(0, len(emails), CONFIRMATION_BATCH):
                    batch = emails[start : start + CONFIRMATION_BATCH]
                    for email, outcome in zip(batch, _send_batch(backend, batch), strict=True):
                        if outcome.status == "sent":
                            sent += 1
                        else:
                            unsent.append((email.to, f"{outcome.status}: {outcome.reason}"))
            if progress is not None:
                progress(counts.addresses, total, "writing")
    finally:
        if backend is not None:
            backend.close()
    return replace(
        report,
        imported=True,
        new=counts.new,
        changed=counts.changed,
        unchanged=counts.unchanged,
        kept_unsubscribed=counts.kept_unsubscribed,
        confirmations=sent,
        unsent=tuple(unsent),
    )


def _send_batch(backend: Backend, emails: Sequence[OutgoingEmail]) -> list[SendResult]:
    """The backend's results; a backend that raises fails the batch, not the import."""
    from digest.deliver import SendResult

    try:
        return backend.send(emails)
    except DeliveryError as exc:
        return [SendResult(e.delivery_id, "retry", str(exc)) for e in emails]
