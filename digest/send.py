"""`digest send`: each due subscriber gets the day's digest exactly once.

Page by page of due readers, both steps restartable:

1. claim: for every confirmed subscriber who is due (their local send time has passed
   and no digest exists for their local day), rank the papers that arrived since their
   last digest, drop every paper already sent to them, freeze the digest as JSON and
   claim (subscriber, day) in one transaction together with the sent-ledger rows;
2. deliver (`dispatch.py`): render the digests just claimed, from memory, and hand them
   to the backend; record sent / retry(at) / failed(reason). Then whatever else is
   pending (an earlier run's claims, retries whose time has come), from the store.

A run killed anywhere leaves claims that the next run delivers as they are, with the
same Message-ID (derived from the delivery id), so at worst a message the server had
already accepted is sent again, recognisably the same. A lease in the store keeps two
send runs from working at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from digest import rank
from digest.config import Config
from digest.deliver import Backend
from digest.dispatch import Dispatcher, Job, ProgressFn, lease_renewer
from digest.errors import DeliveryError
from digest.frozen import FreezeCache, freeze_compact
from digest.memory import collecting_by_hand
from digest.model import Claim, Keyword, Paper, Subscriber
from digest.plan import PERIODS, Due, Ledgers, Planned, due_readers, plan_digests
from digest.store import Store
from digest.store.lease import this_owner
from digest.window import kept_index, kept_vectors, reader_ratings

if TYPE_CHECKING:
    from digest.rank.dense import DenseDay

LEASE = "send"
LEASE_TTL = timedelta(minutes=10)
#: Claims written per transaction (each claim is all-or-nothing either way).
CLAIM_BATCH = 200
#: Readers planned (ranked, rendered into claims) at a time: bounds the memory of a run.
PLAN_PAGE = 2000
#: Which readers a plan reads: the confirmed ones with ids in (after, up to] (all when
#: None), or a function that gives them a page at a time (a worker's shard of due readers).
Readers = tuple[int, int | None] | Callable[[], Iterator[list[Subscriber]]]


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
    #: Left pending, unsent and no attempt counted, because the backend refused the
    #: sender, the login or the API key (`paused_reason` says how): the run stopped.
    paused: int = 0
    paused_reason: str = ""
    #: (subscriber id, why) of readers left out because their row cannot be planned
    #: (an unknown time zone, say): the others are sent as usual.
    skipped: tuple[tuple[int, str], ...] = ()
    dry_run: bool = False
    planned: tuple[tuple[str, int], ...] = field(default_factory=tuple)  #: (email, items)

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"dry run: {self.due} due, {len(self.planned)} would get a digest, "
                f"{self.empty} with nothing new; nothing claimed or sent"
            )
        line = (
            f"{self.due} due, {self.claimed} claimed, {self.sent} sent, {self.retry} to retry, "
            f"{self.failed} failed, {self.cancelled} cancelled, {self.empty} with nothing new"
        )
        if self.skipped:
            line += f", {len(self.skipped)} skipped (bad subscriber rows)"
        if self.paused_reason:
            line += (
                f"; PAUSED: {self.paused_reason}; {self.paused} left pending (no attempt "
                "counted): fix [delivery] and run `digest send` again"
            )
        return line

    @property
    def exit_code(self) -> int:
        """0 done; 1 done with deliveries to retry, failed or readers skipped; 2 paused
        (the sender or key is refused: a setting to fix)."""
        if self.paused_reason:
            return 2
        return 1 if self.retry or self.failed or self.skipped else 0


def delivery_id(installation: str, subscriber_id: int, email: str, day: date) -> str:
    """Opaque and stable: the same reader and day of one store always give the same id.

    `installation` is the store's own random id (`Store.installation_id`), so a rebuilt
    or restored store, or another installation sending from the same domain, never makes
    an id (an outbox file name, a Message-ID) that an earlier digest had; the address
    makes a reused subscriber id a different reader. The id is stored with the claim, so
    a resend of a claimed delivery keeps it whatever this function becomes.
    """
    key = f"digest:{installation}:{subscriber_id}:{email}:{day.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


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
    store.apply_queued_unsubscribes()  # a reader who unsubscribed while it was busy
    owner = this_owner()
    holder = None if dry_run else store.acquire_lease(LEASE, owner, now, LEASE_TTL)
    if holder is not None:
        raise DeliveryError(f"another `digest send` is running ({holder}); try again later")
    try:
        due, empty, claimed, planned = 0, 0, 0, []
        frozen = FreezeCache()  # items and papers readers share, frozen once a run
        stored: set[str] = set()  # item records this run has written (with a new claim)
        dispatcher = None
        skipped: dict[int, str] = {}
        installation = store.installation_id
        if not dry_run:
            assert backend is not None
            renew = lease_renewer(store, LEASE, owner, now, LEASE_TTL)
            dispatcher = Dispatcher(config, store, backend, now, renew, progress)
        # Cycles are collected after each page (digest.memory): the run's caches grow
        # all along, and automatic collections would walk them again and again.
        with collecting_by_hand() as collect:
            for page in _plan(config, store, now, digest_date, tuple(notes), skipped):
                collect()  # what the pages before this one left
                if dispatcher is not None and dispatcher.paused:
                    break  # the sender or key is refused: claim no more until it is fixed
                due += page.due
                empty += page.empty
                if progress:
                    progress(due, page.total, "planning")
                if dispatcher is None:
                    planned += [(p.due.subscriber.email, p.digest.item_count) for p in page.planned]
                    continue
                dispatcher.expected += len(page.planned)
                for start in range(0, len(page.planned), CLAIM_BATCH):
                    chunk = page.planned[start : start + CLAIM_BATCH]
                    if dispatcher.paused:
                        break
                    high = page.high
                    claims = [_claim(p, now, high, frozen, stored, installation) for p in chunk]
                    new = set(store.claim_deliveries(claims, now))
                    claimed += len(new)
                    stored.update(k for c in claims if c.delivery_id in new for k in c.records)
                    # Claimed (committed): send them now, from the digests in memory.
                    pairs = zip(chunk, claims, strict=True)
                    dispatcher.fresh([_job(p, c) for p, c in pairs if c.delivery_id in new])
        bad_rows = tuple(sorted(skipped.items()))
        if dispatcher is None:
            return SendReport(
                due=due, empty=empty, dry_run=True, planned=tuple(planned), skipped=bad_rows
            )
        dispatcher.pending()  # what earlier runs left, and retries whose time has come
        return _report(dispatcher, due=due, claimed=claimed, empty=empty, skipped=bad_rows)
    finally:
        if not dry_run:
            store.release_lease(LEASE, owner)


def retry_due(
    config: Config,
    store: Store,
    backend: Backend,
    now: datetime,
    *,
    progress: ProgressFn | None = None,
) -> SendReport:
    """Deliver what is pending and every retry whose time has come; claim nothing new.

    The scheduler's retry sweep (`digest schedule`), so a retry goes out when its backoff
    ends, not at the reader's next send time. Takes the send lease like `send`.
    """
    owner = this_owner()
    holder = store.acquire_lease(LEASE, owner, now, LEASE_TTL)
    if holder is not None:
        raise DeliveryError(f"another `digest send` is running ({holder}); try again later")
    try:
        renew = lease_renewer(store, LEASE, owner, now, LEASE_TTL)
        dispatcher = Dispatcher(config, store, backend, now, renew, progress)
        dispatcher.pending()
        return _report(dispatcher)
    finally:
        store.release_lease(LEASE, owner)


def _report(dispatcher: Dispatcher, **planning: object) -> SendReport:
    """The report of a run: the planning counts given, the delivery counts it made."""
    counts = dispatcher.counts
    # Paused: every delivery that could go now waits, untouched (this run's and earlier).
    waiting = len(dispatcher.store.due_delivery_ids(dispatcher.now)) if dispatcher.paused else 0
    return SendReport(
        sent=counts["sent"],
        retry=counts["retry"],
        failed=counts["failed"],
        cancelled=counts["cancelled"],
        paused=waiting,
        paused_reason=dispatcher.paused,
        **planning,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class Window:
    """The papers a plan ranks: those whose rows are in (low, high], in row order."""

    papers: list[Paper]
    low: int
    high: int


#: Makes a plan's index of its window for the features `wanted` (`rank.prepare`):
#: `stored_index`, or the day's index `digest worker`'s shards share (`dayindex`).
Indexer = Callable[[Config, Store, datetime, Window, set[str], "DenseDay | None"], "rank.Prepared"]


def stored_index(
    config: Config,
    store: Store,
    now: datetime,
    window: Window,
    wanted: set[str],
    dense: DenseDay | None,
) -> rank.Prepared:
    """The window's index of the `wanted` features, from the terms ingest kept
    (`window.kept_index`: their postings, and blobs only where needed)."""
    synonyms = config.synonyms or None
    return kept_index(store, window.papers, now, config.ranking, synonyms, wanted, dense)


@dataclass(frozen=True, slots=True)
class _Page:
    """The plans for one page of due readers."""

    due: int
    empty: int
    planned: list[Planned]
    high: int  #: the newest paper row these digests considered
    total: int  #: readers due in all pages


def due_pager(
    store: Store,
    now: datetime,
    digest_date: date | None,
    skipped: dict[int, str],
    readers: Readers = (0, None),
) -> Callable[[], Iterator[list[Due]]]:
    """A function that reads the due readers a page at a time (each call anew), of
    `readers`: a worker's ranking shard plans a range of them."""
    first_rows = {freq: store.row_arrived_by(now - period) for freq, period in PERIODS.items()}
    claimed = store.claimed_since((now - timedelta(days=2)).date())

    def due_pages() -> Iterator[list[Due]]:
        pages = readers() if callable(readers) else _reader_pages(store, *readers)
        for page in pages:
            last = store.last_digests([r.id for r in page])
            yield due_readers(page, last, claimed, now, first_rows, digest_date, skipped)

    return due_pages


def _plan(
    config: Config,
    store: Store,
    now: datetime,
    digest_date: date | None,
    notes: tuple[str, ...],
    skipped: dict[int, str],
    readers: Readers = (0, None),
    indexer: Indexer | None = None,
) -> Iterator[_Page]:
    """Read what the planner needs from the store, and plan the due readers page by page.

    Readers are read a page at a time, twice: once to find where the oldest window
    starts, then to plan. The papers since the oldest window are indexed once
    (`indexer`: `stored_index` unless given) and every page is ranked against that
    one index, each reader cut to their own window: memory follows the page, not the list.
    """
    indexer = indexer or stored_index
    high = store.newest_paper_row()  # rows committed from here on go to the next digests
    due_pages = due_pager(store, now, digest_date, skipped, readers)

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
    # The email shows the sentences that matched, with the words that matched marked
    # (templates/email/_item.*): the ranker finds them once per paper and keywords.
    settings, synonyms = config.ranking, config.synonyms or None
    wanted = rank.keyword_features(keywords, settings, synonyms)
    dense = kept_vectors(config, store, window)  # None unless the semantic layer is on
    # the rated papers' vectors too, when meaning counts in their taste
    model = dense.model if dense is not None and settings.like_dense > 0 else None
    prepared = indexer(config, store, now, Window(window, low, high), wanted, dense)
    ledgers = Ledgers(*store.sent_pairs(ids, low), ids)
    for due in due_pages():
        if not due:
            continue
        ratings = reader_ratings(store, [d.subscriber.id for d in due], synonyms, model)
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
            ratings=ratings,
        )
        yield _Page(len(due), empty, planned, high, total)


def _reader_pages(
    store: Store, after: int = 0, upto: int | None = None
) -> Iterator[list[Subscriber]]:
    """The confirmed readers with ids after `after` (up to `upto`), `PLAN_PAGE` at a
    time, by id."""
    while page := store.subscriber_page(after_id=after, limit=PLAN_PAGE, status="confirmed"):
        if upto is not None and page[-1].id > upto:
            page = [r for r in page if r.id <= upto]
            if page:
                yield page
            return
        yield page
        after = page[-1].id


def _job(planned: Planned, claim: Claim) -> Job:
    sub = planned.due.subscriber
    return Job(claim.delivery_id, sub.email, 0, sub, digest=planned.digest)


def _claim(
    planned: Planned,
    now: datetime,
    high: int,
    cache: FreezeCache,
    stored: set[str],
    installation: str,
) -> Claim:
    """The claim of a planned digest; item records in `stored` (written with a claim of
    this run, committed) are left out: the store has them."""
    d = planned.due
    content, records = freeze_compact(planned.digest, cache)
    if stored:
        records = {k: v for k, v in records.items() if k not in stored}
    return Claim(
        delivery_id=delivery_id(installation, d.subscriber.id, d.subscriber.email, d.day),
        subscriber_id=d.subscriber.id,
        digest_date=d.day,
        window_start=d.window_start,
        window_end=now,
        content=content,
        paper_ids=planned.paper_ids,
        papers_upto=high,
        records=records,
    )


__all__: Sequence[str] = ["SendReport", "delivery_id", "retry_due", "send"]
