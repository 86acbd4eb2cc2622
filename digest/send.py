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

import functools
import hashlib
import json
import time as time_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest import rank
from digest.compose import EmailRenderer, Links
from digest.config import Config
from digest.deliver import Backend, OutgoingEmail, SendResult
from digest.errors import DeliveryError
from digest.model import (
    Delivery,
    Digest,
    DigestItem,
    DigestSection,
    Keyword,
    Match,
    Paper,
    Profile,
    Subscriber,
)
from digest.pipeline import rank_settings
from digest.render import make_environment
from digest.store import Store
from digest.store.lease import this_owner
from digest.subscriptions import link
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
            (
                delivery_id(sub.id, day),
                sub.id,
                day,
                window,
                freeze(digest),
                [i.paper.id for s in digest.sections for i in s.items],
            )
            for sub, day, digest, window in plans
        ]
        claimed = 0
        for start in range(0, len(claims), CLAIM_BATCH):
            claimed += store.claim_deliveries(
                claims[start : start + CLAIM_BATCH], now, papers_upto=high
            )
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
    settings = rank_settings(config)
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
        profiles, owners = [], []
        ledgers = {sub.id: store.sent_paper_ids(sub.id) for sub, _, _ in members}
        overlap = {sid: sum(1 for p in papers if p.id in led) for sid, led in ledgers.items()}
        for m, (sub, _, _) in enumerate(members):
            for spec in sub.profiles:
                prof = rank.make_profile(
                    spec.name,
                    spec.keywords,
                    spec.exclude,
                    spec.max_items,
                    spec.min_score,
                    defaults=settings,
                )
                profiles.append(
                    Profile(
                        prof.name,
                        prof.keywords,
                        prof.exclude,
                        prof.max_items + overlap[sub.id],
                        prof.min_score,
                    )
                )
                owners.append((m, prof.max_items))
        ranked = rank.rank(papers, profiles, now, settings, synonyms=config.synonyms or None)
        sections: dict[int, list[DigestSection]] = {}
        for (m, limit), profile, items in zip(owners, profiles, ranked, strict=True):
            ledger = ledgers[members[m][0].id]  # grows: a paper shows in one section only
            kept = tuple(i for i in items if i.paper.id not in ledger)[:limit]
            ledger.update(i.paper.id for i in kept)
            sections.setdefault(m, []).append(
                DigestSection(
                    Profile(
                        profile.name, profile.keywords, profile.exclude, limit, profile.min_score
                    ),
                    kept,
                )
            )
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
            counts["cancelled"] += sum(1 for d in dropped if d[2].startswith("cancelled"))
            counts["failed"] += sum(1 for d in dropped if not d[2].startswith("cancelled"))
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
) -> tuple[list[tuple[Delivery, OutgoingEmail]], list[tuple[str, str, str, datetime | None]]]:
    """The batch's emails, and the outcomes of deliveries that must not go out."""
    ready: list[tuple[Delivery, OutgoingEmail]] = []
    dropped: list[tuple[str, str, str, datetime | None]] = []
    for d in batch:
        sub = subscribers.get(d.subscriber_id)
        if sub is None or sub.status != "confirmed":
            dropped.append((d.id, "failed", "cancelled: unsubscribed before it was sent", None))
            continue
        try:
            ready.append((d, _email(config, subscribers, renderer, secret, d, now)))
        except Exception as exc:  # one digest that cannot render must not stop the rest
            dropped.append((d.id, "failed", f"cannot render: {type(exc).__name__}: {exc}", None))
    return ready, dropped


def _outcome(
    config: Config, d: Delivery, r: SendResult, now: datetime
) -> tuple[str, str, str, datetime | None]:
    if r.status == "sent":
        return d.id, "sent", "", None
    if r.status == "failed":
        return d.id, "failed", r.reason, None
    if d.attempts + 1 >= config.delivery.max_attempts:
        return d.id, "failed", f"gave up after {d.attempts + 1} attempts: {r.reason}", None
    wait = min(BACKOFF_CAP, BACKOFF_BASE * 2**d.attempts)
    if r.retry_after is not None:
        wait = max(wait, timedelta(seconds=r.retry_after))
    return d.id, "retry", r.reason, now + wait


def _email(
    config: Config,
    subscribers: dict[int, Subscriber],
    renderer: EmailRenderer,
    secret: bytes,
    d: Delivery,
    now: datetime,
) -> OutgoingEmail:
    sub = subscribers[d.subscriber_id]
    digest = thaw(d.content)
    unsubscribe = link(config, secret, "unsubscribe", sub, now)
    links = Links(
        archive=config.publish.base_url,
        manage=link(config, secret, "manage", sub, now),
        unsubscribe=unsubscribe,
    )
    rendered = renderer.render(digest, links)
    domain = config.delivery.from_addr.rpartition("@")[2].rstrip(">").strip() or "localhost"
    mailto = config.delivery.unsubscribe_mailto
    return OutgoingEmail(
        delivery_id=d.id,
        to=d.email,
        from_addr=config.delivery.from_addr,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"<{d.id}@{domain}>",
        date=now,
        unsubscribe_url=unsubscribe,
        unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe" if mailto else "",
    )


# -- the frozen digest -------------------------------------------------------------------


def freeze(digest: Digest) -> str:
    """The digest as JSON: what a claim stores, so a resend renders the same digest."""
    raw = {
        "day": digest.day.isoformat(),
        "title": digest.title,
        "papers_considered": digest.papers_considered,
        "notes": list(digest.notes),
        "sections": [
            {"profile": _profile_dict(s.profile), "items": [_item_dict(i) for i in s.items]}
            for s in digest.sections
        ],
    }
    return json.dumps(raw, ensure_ascii=False, sort_keys=True)


def _profile_dict(p: Profile) -> dict:
    def kws(keywords: tuple[Keyword, ...]) -> list[dict]:
        return [{"text": k.text, "phrase": k.phrase, "weight": k.weight} for k in keywords]

    return {
        "name": p.name,
        "keywords": kws(p.keywords),
        "exclude": kws(p.exclude),
        "max_items": p.max_items,
        "min_score": p.min_score,
    }


def _item_dict(item: DigestItem) -> dict:
    return {
        "paper": _paper_dict(item.paper),
        "score": item.score,
        "matches": [{"keyword": m.keyword, "fields": list(m.fields)} for m in item.matches],
        "snippets": list(item.snippets),
    }


@functools.lru_cache(maxsize=8192)
def _paper_dict(p: Paper) -> dict:
    """A paper as JSON-ready data; cached, since every subscriber's digest repeats papers."""

    def iso(value: date | datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": p.id,
        "title": p.title,
        "abstract": p.abstract,
        "published": iso(p.published),
        "upvotes": p.upvotes,
        "authors_count": p.authors_count,
        "organization": p.organization,
        "arxiv_id": p.arxiv_id,
        "url": p.url,
        "sources": list(p.sources),
        "first_seen": iso(p.first_seen),
        "last_seen": iso(p.last_seen),
    }


def thaw(content: str) -> Digest:
    """The digest a claim stored."""
    raw = json.loads(content)
    return Digest(
        day=date.fromisoformat(raw["day"]),
        title=raw["title"],
        papers_considered=raw["papers_considered"],
        notes=tuple(raw["notes"]),
        sections=tuple(
            DigestSection(_profile(s["profile"]), tuple(_item(i) for i in s["items"]))
            for s in raw["sections"]
        ),
    )


def _profile(raw: dict) -> Profile:
    return Profile(
        raw["name"],
        tuple(Keyword(**k) for k in raw["keywords"]),
        tuple(Keyword(**k) for k in raw["exclude"]),
        raw["max_items"],
        raw["min_score"],
    )


def _item(raw: dict) -> DigestItem:
    p = raw["paper"]
    key = (
        p["id"],
        p["title"],
        p["abstract"],
        p["published"],
        p["upvotes"],
        p["authors_count"],
        p["organization"],
        p["arxiv_id"],
        p["url"],
        tuple(p["sources"]),
        p["first_seen"],
        p["last_seen"],
    )
    return DigestItem(
        _thaw_paper(key),
        raw["score"],
        tuple(Match(m["keyword"], tuple(m["fields"])) for m in raw["matches"]),
        tuple(raw["snippets"]),
    )


@functools.lru_cache(maxsize=8192)
def _thaw_paper(key: tuple) -> Paper:
    """A frozen paper back as a Paper; cached, since many digests of a day share papers."""
    (pid, title, abstract, published, upvotes, authors, org, arxiv, url, sources, first, last) = key
    return Paper(
        pid,
        title,
        abstract,
        date.fromisoformat(published) if published else None,
        upvotes,
        authors,
        org,
        arxiv,
        url,
        sources,
        datetime.fromisoformat(first) if first else None,
        datetime.fromisoformat(last) if last else None,
    )


def confirmation_email(
    config: Config, sub: Subscriber, confirm_link: str, now: datetime
) -> OutgoingEmail:
    """The double opt-in message: one link, nothing else."""
    text = (
        f"Please confirm your papers-digest subscription for {sub.email}:\n\n{confirm_link}\n\n"
        "The link works for 7 days. If you did not ask for this, ignore this message.\n"
    )
    from markupsafe import escape

    html = (
        f"<p>Please confirm your papers-digest subscription for {escape(sub.email)}:</p>"
        f'<p><a href="{escape(confirm_link)}">Confirm my subscription</a></p>'
        "<p>The link works for 7 days. If you did not ask for this, ignore this message.</p>"
    )
    did = hashlib.sha256(f"confirm:{sub.id}:{now.isoformat()}".encode()).hexdigest()[:24]
    domain = config.delivery.from_addr.rpartition("@")[2].rstrip(">").strip() or "localhost"
    return OutgoingEmail(
        delivery_id=did,
        to=sub.email,
        from_addr=config.delivery.from_addr,
        subject="Confirm your papers-digest subscription",
        text=text,
        html=html,
        message_id=f"<{did}@{domain}>",
        date=now,
        unsubscribe_url="",
        unsubscribe_mailto="",
    )


__all__: Sequence[str] = [
    "SendReport",
    "confirmation_email",
    "delivery_id",
    "freeze",
    "send",
    "thaw",
]
