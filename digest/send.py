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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest import rank
from digest.codec import freeze_digest, thaw_digest
from digest.config import Config
from digest.deliver import Backend, OutgoingEmail, SendResult
from digest.errors import DeliveryError
from digest.links import link
from digest.model import Claim, Delivery, Digest, DigestSection, Outcome, Subscriber
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
BATCH_PER_CONNECTION = 1
#: Claims written per transaction (each claim is all-or-nothing either way).
CLAIM_BATCH = 200
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


def local_day(sub: Subscriber, now: datetime) -> tuple[date, bool]:
    """The subscriber's local date now, and whether their send time has passed."""
    local = now.astimezone(ZoneInfo(sub.timezone))
    hour, minute = (int(x) for x in sub.send_at.split(":"))
    return local.date(), local.time() >= time(hour, minute)


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
        plans, due, empty, high = _plan(config, store, now, digest_date, tuple(notes))
        if dry_run:
            planned = tuple((sub.email, digest.item_count) for sub, _, digest, _ in plans)
            return SendReport(due=due, empty=empty, dry_run=True, planned=planned)
        claims = [
            Claim(
                delivery_id=delivery_id(sub.id, day),
                subscriber_id=sub.id,
                digest_date=day,
                window_start=window[0],
                window_end=window[1],
                content=freeze_digest(digest),
                paper_ids=tuple(i.paper.id for s in digest.sections for i in s.items),
                papers_upto=high,
            )
            for sub, day, digest, window in plans
        ]
        claimed = 0
        for start in range(0, len(claims), CLAIM_BATCH):
            claimed += store.claim_deliveries(claims[start : start + CLAIM_BATCH], now)
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


_Window = tuple[datetime | None, datetime]


def _plan(
    config: Config, store: Store, now: datetime, digest_date: date | None, notes: tuple[str, ...]
) -> tuple[list[tuple[Subscriber, date, Digest, _Window]], int, int, int]:
    """Digests for the due subscribers, ranked in batches of subscribers sharing a window."""
    settings = config.ranking
    high = store.newest_paper_row()  # rows committed from here on go to the next digests
    due: list[tuple[Subscriber, date, _Window, tuple[str, object]]] = []
    for sub in store.subscribers(status="confirmed"):
        if not sub.profiles:
            continue
        day, time_has_come = local_day(sub, now)
        if digest_date is not None:
            day, time_has_come = digest_date, True
        last = store.last_delivery(sub.id)
        if not time_has_come or store.delivery_for(sub.id, day) is not None:
            continue
        if sub.frequency == "weekly" and last and (day - last.digest_date).days < 7:
            continue
        period = timedelta(days=7 if sub.frequency == "weekly" else 1)
        start = last.window_end if last else min(sub.created_at, now) - period
        # New = arrived in the store after the last digest's high-water mark, whatever
        # first_seen says (captures are stamped with their day, merges keep the earliest).
        # A first digest takes what was first seen in the period before subscribing.
        key: tuple[str, object] = (
            ("after", last.papers_upto)
            if last and last.papers_upto is not None
            else ("since", start)
        )
        due.append((sub, day, (start, now), key))
    groups: dict[tuple[str, object], list[tuple[Subscriber, date, _Window]]] = {}
    for sub, day, window, key in due:
        groups.setdefault(key, []).append((sub, day, window))
    plans, empty = [], 0
    for (kind, mark), members in groups.items():
        if kind == "after":
            papers = store.papers_after_row(int(mark), high)  # type: ignore[call-overload]
        else:
            start = mark  # type: ignore[assignment]
            papers = [
                p
                for p in store.papers(since=start)
                if p.first_seen is not None and p.first_seen > start and p.first_seen <= now
            ]
        # One ranking of the group's papers for every profile of every reader in it; each
        # profile excludes what its reader was sent before. A paper shows in one section
        # of a digest only: a later section asks for as many more as the earlier ones
        # may take (bounded by the digest's size, not by the reader's history).
        profiles, owners, excludes = [], [], []
        for m, (sub, _, _) in enumerate(members):
            ledger = store.sent_paper_ids(sub.id)
            earlier = 0
            for profile in sub.profiles:
                limit = settings.max_items_of(profile)
                profiles.append(replace(profile, max_items=limit + earlier))
                owners.append((m, profile, limit))
                excludes.append(ledger)
                earlier += limit
        ranked = rank.rank(
            papers, profiles, now, settings, synonyms=config.synonyms or None, exclude_ids=excludes
        )
        sections: dict[int, list[DigestSection]] = {}
        taken: dict[int, set[str]] = {}
        for (m, profile, limit), items in zip(owners, ranked, strict=True):
            seen = taken.setdefault(m, set())
            kept = tuple(i for i in items if i.paper.id not in seen)[:limit]
            seen.update(i.paper.id for i in kept)
            sections.setdefault(m, []).append(DigestSection(profile, kept))
        for m, (sub, day, window) in enumerate(members):
            digest = Digest(
                day=day,
                title=config.digest_title,
                sections=tuple(sections[m]),
                papers_considered=len(papers),
                notes=notes,
            )
            if digest.item_count == 0 and not sub.notify_empty:
                empty += 1
                continue
            plans.append((sub, day, digest, window))
    return plans, len(due), empty, high


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
    subscribers = {sub.id: sub for sub in store.subscribers()} if pending else {}
    counts = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0}
    started = renewed = time_module.monotonic()
    size = BATCH_PER_CONNECTION * max(1, config.delivery.smtp.connections)
    page: list[Delivery] = []
    cursor = done = 0
    while cursor < len(pending) or page:
        if not page:  # load the frozen digests a page at a time: a big run stays small
            page = store.deliveries_by_id(pending[cursor : cursor + PAGE])
            cursor += PAGE
            continue
        ready, dropped = _sendable(page[:size], subscribers, config, renderer, secret, now)
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
            progress(done, len(pending), "send")
    return counts


def _sendable(
    batch: list[Delivery],
    subscribers: dict[int, Subscriber],
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
                thaw_digest(d.content),
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
