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
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
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
BATCH = 100
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
            f"{self.failed} failed, {self.empty} with nothing new"
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
) -> SendReport:
    """Claim what is due, then deliver what is pending; see the module docstring."""
    owner = this_owner()
    holder = None if dry_run else store.acquire_lease(LEASE, owner, now, LEASE_TTL)
    if holder is not None:
        raise DeliveryError(f"another `digest send` is running ({holder}); try again later")
    try:
        plans, due, empty = _plan(config, store, now, digest_date)
        if dry_run:
            planned = tuple((sub.email, digest.item_count) for sub, _, digest, _ in plans)
            return SendReport(due=due, empty=empty, dry_run=True, planned=planned)
        claimed = 0
        for sub, day, digest, window in plans:
            ids = [i.paper.id for s in digest.sections for i in s.items]
            claimed += store.claim_delivery(
                delivery_id(sub.id, day), sub.id, day, window, freeze(digest), ids, now
            )
        assert backend is not None
        counts = _deliver(config, store, backend, now, owner, progress)
        return SendReport(due=due, claimed=claimed, empty=empty, **counts)
    finally:
        if not dry_run:
            store.release_lease(LEASE, owner)


def _plan(
    config: Config, store: Store, now: datetime, digest_date: date | None
) -> tuple[list[tuple[Subscriber, date, Digest, tuple[datetime | None, datetime]]], int, int]:
    """Digests for the due subscribers, ranked in batches of subscribers sharing a window."""
    settings = rank_settings(config)
    due: list[tuple[Subscriber, date, tuple[datetime | None, datetime]]] = []
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
        due.append((sub, day, (start, now)))
    groups: dict[tuple[datetime | None, datetime], list[tuple[Subscriber, date]]] = {}
    for sub, day, window in due:
        groups.setdefault(window, []).append((sub, day))
    plans, empty = [], 0
    for window, members in groups.items():
        papers = [
            p
            for p in store.papers(since=window[0])
            if p.first_seen is not None
            and (window[0] is None or p.first_seen > window[0])
            and p.first_seen <= window[1]
        ]
        profiles, owners = [], []
        ledgers = {sub.id: store.sent_paper_ids(sub.id) for sub, _ in members}
        overlap = {sid: sum(1 for p in papers if p.id in led) for sid, led in ledgers.items()}
        for m, (sub, _) in enumerate(members):
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
            ledger = ledgers[members[m][0].id]
            kept = tuple(i for i in items if i.paper.id not in ledger)[:limit]
            sections.setdefault(m, []).append(
                DigestSection(
                    Profile(
                        profile.name, profile.keywords, profile.exclude, limit, profile.min_score
                    ),
                    kept,
                )
            )
        for m, (sub, day) in enumerate(members):
            digest = Digest(
                day=day,
                title=config.digest_title,
                sections=tuple(sections[m]),
                papers_considered=len(papers),
            )
            if digest.item_count == 0 and not sub.notify_empty:
                empty += 1
                continue
            plans.append((sub, day, digest, window))
    return plans, len(due), empty


def _deliver(
    config: Config,
    store: Store,
    backend: Backend,
    now: datetime,
    owner: str,
    progress: ProgressFn | None,
) -> dict[str, int]:
    pending = store.due_deliveries(now)
    renderer = EmailRenderer(
        make_environment(config.templates_dir), base_url=config.publish.base_url
    )
    secret = load_secret(config) if pending else b""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for start in range(0, len(pending), BATCH):
        batch = pending[start : start + BATCH]
        emails = [_email(config, store, renderer, secret, d, now) for d in batch]
        results = backend.send(emails)
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
        store.acquire_lease(LEASE, owner, now, LEASE_TTL)  # renew
        if progress:
            progress(min(start + BATCH, len(pending)), len(pending), "send")
    return counts


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
    config: Config, store: Store, renderer: EmailRenderer, secret: bytes, d: Delivery, now: datetime
) -> OutgoingEmail:
    sub = store.subscriber(d.subscriber_id)
    assert sub is not None
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
    return json.dumps(asdict(digest), default=_default, ensure_ascii=False, sort_keys=True)


def _default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot freeze {type(value).__name__}")


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


def _profile(raw: dict) -> Profile:  # type: ignore[type-arg]
    return Profile(
        raw["name"],
        tuple(Keyword(**k) for k in raw["keywords"]),
        tuple(Keyword(**k) for k in raw["exclude"]),
        raw["max_items"],
        raw["min_score"],
    )


def _item(raw: dict) -> DigestItem:  # type: ignore[type-arg]
    p = raw["paper"]
    paper = Paper(
        **{
            **p,
            "published": date.fromisoformat(p["published"]) if p["published"] else None,
            "sources": tuple(p["sources"]),
            "first_seen": datetime.fromisoformat(p["first_seen"]) if p["first_seen"] else None,
            "last_seen": datetime.fromisoformat(p["last_seen"]) if p["last_seen"] else None,
        }
    )
    return DigestItem(
        paper,
        raw["score"],
        tuple(Match(m["keyword"], tuple(m["fields"])) for m in raw["matches"]),
        tuple(raw["snippets"]),
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
