"""`digest send`: each due subscriber gets the day's digest exactly once.

Two phases, both restartable:

1. claim: for every confirmed subscriber who is due (their local send time has passed
   and no digest exists for their local day), rank the papers that arrived since their
   last digest, drop every paper already sent to them, freeze the digest as JSON and
   claim (subscriber, day) in one transaction together with the sent-ledger rows;
2. deliver: render every pending (or due retry) delivery from its frozen content and
   hand it to the backend; record sent / retry(at) / failed(reason).

A run killed anywhere leaves claims that the next run delivers as they are, with the
same Message-ID (derived from the delivery id), so at worst a message the server had
already accepted is sent again, recognisably the same. A lease in the store keeps two
send runs from working at once.
"""

from __future__ import annotations

import hashlib
import time as time_module
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from digest import rank
from digest.codec import ItemBody, freeze_compact, item_keys, thaw_compact
from digest.config import Config
from digest.deliver import Backend, OutgoingEmail, SendResult
from digest.errors import DeliveryError
from digest.links import link
from digest.model import Claim, Delivery, Keyword, Outcome, Subscriber
from digest.plan import PERIODS, Due, Ledgers, Planned, due_readers, plan_digests
from digest.render import EmailRenderer, Links, make_environment
from digest.render.email import digest_email
from digest.store import Store
from digest.store.lease import this_owner
from digest.tokens import load_secret

LEASE = "send"
LEASE_TTL = timedelta(minutes=10)
#: Messages handed to the backend at a time, per connection. Each batch's outcomes are
#: recorded before the next batch goes out, so a kill can resend at most one message per
#: connection (recognisably: same Message-ID); connections stay open across batches.
#: A backend whose resends are harmless says how many it takes (`batch`: the outbox).
BATCH_PER_CONNECTION = 1
#: Claims written per transaction (each claim is all-or-nothing either way).
CLAIM_BATCH = 200
#: Readers planned (ranked, rendered into claims) at a time: bounds the memory of a run.
PLAN_PAGE = 2000
#: Deliveries loaded from the store at a time while sending.
PAGE = 256
#: Retry backoff: 1 min, 2, 4, ... capped at 6 hours.
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class SendReport:
    """What a send run did (or, with dry_run, would do)."""

    due: int = 0
    claimed: int = 0
    empty: int = 0  #: due but nothing new matched (and no "nothing today" note asked for)
    sent: int = 0
    retry: int = 0
    failed: int = 0
    cancelled: int = 0  #: claimed, then the subscriber left before it went out
    dry_run: bool = False
    planned: tuple[tuple[str, int], ...] = field(default_factory=tuple)  #: (email, items)

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {self.due} due, {len(self.planned)} would get a digest, "
                f"{self.empty} with nothing new; nothing claimed or sent"
            )
        return (
            f"{self.due} due, {self.claimed} claimed, {self.sent} sent, {self.retry} to retry, "
            f"{self.failed} failed, {self.cancelled} cancelled, {self.empty} with nothing new"
        )


def delivery_id(subscriber_id: int, day: date) -> str:
    """Opaque and stable: the same subscriber and day always give the same id."""
    return hashlib.sha256(f"digest:{subscriber_id}:{day.isoformat()}".encode()).hexdigest()[:24]


def send(
    config: Config,
    store: Store,
    backend: Backend | None,
    now: datetime,
    *,
    dry_run: bool = False,
    digest_date: date | None = None,
    progress: ProgressFn | None = None,
    notes: Sequence[str] = (),
) -> SendReport:
    """Claim what is due, then deliver what is pending; see the module docstring.

    `notes` go at the top of every digest claimed now (e.g. "A source failed: ...").
    """
    owner = this_owner()
    holder = None if dry_run else store.acquire_lease(LEASE, owner, now, LEASE_TTL)
    if holder is not None:
        raise DeliveryError(f"another `digest send` is running ({holder}); try again later")
    try:
        due, empty, claimed, planned = 0, 0, 0, []
        frozen: dict[ItemBody, tuple[str, str]] = {}  # items many readers share, frozen once
        for page in _plan(config, store, now, digest_date, tuple(notes)):
            due += page.due
            empty += page.empty
            if progress:
                progress(due, page.total, "planning")
            if dry_run:
                planned += [(p.due.subscriber.email, p.digest.item_count) for p in page.planned]
                continue
            claims = [_claim(p, now, page.high, frozen) for p in page.planned]
            for start in range(0, len(claims), CLAIM_BATCH):
                claimed += store.claim_deliveries(claims[start : start + CLAIM_BATCH], now)
        if dry_run:
            return SendReport(due=due, empty=empty, dry_run=True, planned=tuple(planned))
        assert backend is not None
        counts = _deliver(config, store, backend, now, owner, progress)
        return SendReport(
            due=due,
            claimed=claimed,
            empty=empty,
            sent=counts["sent"],
            retry=counts["retry"],
            failed=counts["failed"],
            cancelled=counts["cancelled"],
        )
    finally:
        if not dry_run:
            store.release_lease(LEASE, owner)


@dataclass(frozen=True, slots=True)
class _Page:
    """The plans for one page of due readers."""

    due: int
    empty: int
    planned: list[Planned]
    high: int  #: the newest paper row these digests considered
    total: int  #: readers due in all pages


def _plan(
    config: Config, store: Store, now: datetime, digest_date: date | None, notes: tuple[str, ...]
) -> Iterator[_Page]:
    """Read what the planner needs from the store, and plan the due readers page by page.

    Readers are read a page at a time, twice: once to find where the oldest window
    starts, then to plan. The papers since the oldest window are indexed once
    (`rank.prepare`, from the terms ingest kept) and every page is ranked against that
    one index, each reader cut to their own window: memory follows the page, not the list.
    """
    high = store.newest_paper_row()  # rows committed from here on go to the next digests
    first_rows = {freq: store.row_arrived_by(now - period) for freq, period in PERIODS.items()}
    last = store.last_digests()
    claimed = store.claimed_since((now - timedelta(days=2)).date())

    def due_pages() -> Iterator[list[Due]]:
        for readers in _reader_pages(store):
            yield due_readers(readers, last, claimed, now, first_rows, digest_date)

    low: int | None = None
    keywords: set[Keyword] = set()
    total = 0
    for page in due_pages():  # where the oldest window starts, and every keyword in use
        total += len(page)
        for d in page:
            low = d.after_row if low is None else min(low, d.after_row)
            keywords.update(k for p in d.subscriber.profiles for k in (*p.keywords, *p.exclude))
    if low is None:
        return
    arrivals = store.arrivals(low, high)
    window = [p for _, p in arrivals]
    ids = [p.id for p in window]
    # The email shows each paper's opening sentences (templates/email/_item.*), not the
    # sentences that matched: the send does not look for them (the archive does).
    settings, synonyms = replace(config.ranking, snippets=0), config.synonyms or None
    blobs = store.paper_terms(ids, rank.terms_key(synonyms))  # kept by ingest
    wanted = rank.keyword_features(keywords, settings, synonyms)
    prepared = rank.prepare(window, now, settings, synonyms, blobs, wanted)
    ledgers = Ledgers(*store.sent_pairs(ids), ids)
    for due in due_pages():
        if not due:
            continue
        planned, empty = plan_digests(
            due,
            arrivals,
            ledgers,
            now,
            settings=settings,
            synonyms=synonyms,
            title=config.digest_title,
            notes=notes,
            prepared=prepared,
        )
        yield _Page(len(due), empty, planned, high, total)


def _reader_pages(store: Store) -> Iterator[list[Subscriber]]:
    """The confirmed readers, `PLAN_PAGE` at a time, by id."""
    after = 0
    while page := store.subscriber_page(after_id=after, limit=PLAN_PAGE, status="confirmed"):
        yield page
        after = page[-1].id


def _claim(
    planned: Planned, now: datetime, high: int, cache: dict[ItemBody, tuple[str, str]]
) -> Claim:
    d = planned.due
    content, records = freeze_compact(planned.digest, cache)
    return Claim(
        delivery_id=delivery_id(d.subscriber.id, d.day),
        subscriber_id=d.subscriber.id,
        digest_date=d.day,
        window_start=d.window_start,
        window_end=now,
        content=content,
        paper_ids=planned.paper_ids,
        papers_upto=high,
        records=records,
    )


def _deliver(
    config: Config,
    store: Store,
    backend: Backend,
    now: datetime,
    owner: str,
    progress: ProgressFn | None,
) -> dict[str, int]:
    pending = store.due_delivery_ids(now)
    renderer = EmailRenderer(
        make_environment(config.templates_dir),
        base_url=config.publish.base_url,
        intro=config.intro,
        brand=config.digest_title,
    )
    secret = load_secret(config) if pending else b""
    subscribers: dict[int, Subscriber] = {}
    counts = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0}
    thawed: dict[str, ItemBody] = {}  # item records many deliveries share, read once
    started = renewed = time_module.monotonic()
    size = getattr(backend, "batch", 0) or BATCH_PER_CONNECTION * max(
        1, config.delivery.smtp.connections
    )
    page: list[Delivery] = []
    records: dict[str, str] = {}
    cursor = done = 0
    while cursor < len(pending) or page:
        if not page:  # load the frozen digests a page at a time: a big run stays small
            page = store.deliveries_by_id(pending[cursor : cursor + PAGE])
            records = store.frozen_items([k for d in page for k in _keys(d)])
            subscribers = store.subscribers_by_id([d.subscriber_id for d in page])
            cursor += PAGE
            continue
        ready, dropped = _sendable(
            page[:size], subscribers, (records, thawed), config, renderer, secret, now
        )
        page = page[size:]
        if dropped:  # unsubscribed meanwhile, or cannot render: never block the others
            store.record_attempts(dropped, now)
            cancelled = sum(1 for o in dropped if o.reason.startswith("cancelled"))
            counts["cancelled"] += cancelled
            counts["failed"] += len(dropped) - cancelled
        if not ready:
            continue
        results = backend.send([email for _, email in ready])
        batch = [d for d, _ in ready]
        store.record_attempts(
            [_outcome(config, d, r, now) for d, r in zip(batch, results, strict=True)], now
        )
        for d, r in zip(batch, results, strict=True):
            state = (
                "failed"
                if r.status == "retry" and d.attempts + 1 >= config.delivery.max_attempts
                else r.status
            )
            counts[state] += 1
        if time_module.monotonic() - renewed > 60:  # keep the lease while a long run works
            elapsed = timedelta(seconds=time_module.monotonic() - started)
            holder = store.acquire_lease(LEASE, owner, now + elapsed, LEASE_TTL)
            if holder is not None:
                raise DeliveryError(
                    f"lost the send lease to {holder}; stopped (what was sent is recorded)"
                )
            renewed = time_module.monotonic()
        done += len(batch)
        if progress:
            progress(done, len(pending), "delivering")
    return counts


def _keys(d: Delivery) -> list[str]:
    """The item records a delivery's content refers to; none if it cannot be read (then
    rendering it fails alone, with the reason)."""
    try:
        return item_keys(d.content)
    except (ValueError, KeyError, TypeError):
        return []


def _sendable(
    batch: list[Delivery],
    subscribers: dict[int, Subscriber],
    items: tuple[dict[str, str], dict[str, ItemBody]],
    config: Config,
    renderer: EmailRenderer,
    secret: bytes,
    now: datetime,
) -> tuple[list[tuple[Delivery, OutgoingEmail]], list[Outcome]]:
    """The batch's emails, and the outcomes of deliveries that must not go out."""
    ready: list[tuple[Delivery, OutgoingEmail]] = []
    dropped: list[Outcome] = []
    for d in batch:
        sub = subscribers.get(d.subscriber_id)
        if sub is None or sub.status != "confirmed":
            dropped.append(Outcome(d.id, "failed", "cancelled: unsubscribed before it was sent"))
            continue
        try:
            links = Links(
                archive=config.publish.base_url,
                manage=link(config, secret, "manage", sub, now),
                unsubscribe=link(config, secret, "unsubscribe", sub, now),
            )
            email = digest_email(
                renderer,
                config.delivery,
                thaw_compact(d.content, *items),
                delivery_id=d.id,
                to=d.email,
                links=links,
                now=now,
            )
            ready.append((d, email))
        except Exception as exc:  # one digest that cannot render must not stop the rest
            dropped.append(Outcome(d.id, "failed", f"cannot render: {type(exc).__name__}: {exc}"))
    return ready, dropped


def _outcome(config: Config, d: Delivery, r: SendResult, now: datetime) -> Outcome:
    if r.status == "sent":
        return Outcome(d.id, "sent")
    if r.status == "failed":
        return Outcome(d.id, "failed", r.reason)
    if d.attempts + 1 >= config.delivery.max_attempts:
        return Outcome(d.id, "failed", f"gave up after {d.attempts + 1} attempts: {r.reason}")
    wait = min(BACKOFF_CAP, BACKOFF_BASE * 2**d.attempts)
    if r.retry_after is not None:
        wait = max(wait, timedelta(seconds=r.retry_after))
    return Outcome(d.id, "retry", r.reason, now + wait)


__all__: Sequence[str] = ["SendReport", "delivery_id", "send"]
