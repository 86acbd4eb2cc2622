"""Subscribing, confirming (double opt-in), unsubscribing and editing profiles.

Addresses are validated and normalised with email-validator (one row per address).
Every change is keyed by a signed token or by the operator's explicit command; a token
for one subscriber can never act on another (see tokens.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import Config
from digest.errors import StoreBusy, SubscriptionError
from digest.links import link
from digest.model import Profile, Subscriber
from digest.store import QueuedUnsubscribe, Store
from digest.tokens import INVALID, LIFETIME, load_secret, make_token, parse_token, verify

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
#: The profile name when none is given (`digest subscribe`, a bulk import row).
DEFAULT_PROFILE = "papers"
#: How `check_settings` names the settings in its messages: the CLI's options by default.
OPTION_LABELS: tuple[str, str, str] = ("--timezone", "--send-at", "--frequency")


def normalize_email(address: str) -> str:
    """The canonical form of an address; SubscriptionError says what is wrong with it.

    The local part is case-folded too: RFC 5321 lets it be case-sensitive, but no mail
    provider in use treats `Ada@` and `ada@` as two people, and one row per person is
    what matters here.
    """
    # Here, not at module level: `subscribers export` and the web pages' imports need
    # none of email_validator's (and idna's) start-up cost.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise SubscriptionError(f"{address!r} is not a valid email address: {exc}") from None


def check_settings(
    timezone: str | None,
    send_at: str | None,
    frequency: str | None,
    *,
    labels: tuple[str, str, str] = OPTION_LABELS,
) -> None:
    """Validate the delivery settings a subscriber typed.

    `labels` name the three settings in the message (a file's column names, say).
    """
    tz_label, send_at_label, frequency_label = labels
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SubscriptionError(
                f"{tz_label} {timezone!r}: unknown time zone; use an IANA name like Europe/Berlin"
            ) from None
    if send_at is not None and not _HHMM.fullmatch(send_at):
        raise SubscriptionError(f"{send_at_label} {send_at!r}: use 24-hour HH:MM, like 07:00")
    if frequency is not None and frequency not in ("daily", "weekly"):
        raise SubscriptionError(f"{frequency_label} {frequency!r}: use daily or weekly")


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """What `subscribe` did: the subscriber as stored, and the link to confirm by."""

    subscriber: Subscriber
    created: bool
    confirm_link: str  #: "" when no confirmation is needed


def subscribe(
    config: Config,
    store: Store,
    address: str,
    profile: Profile | None,
    now: datetime,
    *,
    timezone: str | None = None,
    send_at: str | None = None,
    frequency: str | None = None,
    notify_empty: bool | None = None,
    confirmed: bool = False,
) -> SubscribeResult:
    """Add or update a subscriber and one named profile; pending until confirmed.

    `profile` was parsed where it was typed (`rank.make_profile`), so it is stored as it
    is; None changes only the settings of a known subscriber.
    """
    email = normalize_email(address)
    check_settings(timezone, send_at, frequency)
    before = store.subscriber_by_email(email)
    if profile is None and before is None:
        raise SubscriptionError(f"{email}: a new subscriber needs --keywords")
    sub, created = store.upsert_subscriber(
        email,
        profile,
        now=now,
        timezone=timezone,
        send_at=send_at,
        frequency=frequency,
        notify_empty=notify_empty,
        confirmed=confirmed,
    )
    if sub.status == "confirmed" or _link_already_sent(before, profile, now):
        return SubscribeResult(sub, created, "")
    return SubscribeResult(sub, created, link(config, load_secret(config), "confirm", sub, now))


def _link_already_sent(before: Subscriber | None, profile: Profile | None, now: datetime) -> bool:
    """A pending reader who adds or edits a profile while the first confirmation link
    still works gets no second one (asking again with no profile change does)."""
    if before is None or before.status != "pending" or profile is None:
        return False
    if profile in before.profiles:  # the same request again: "send me the link again"
        return False
    return now - before.created_at < LIFETIME["confirm"]


def subscriber_for(
    store: Store, secret: bytes, token: str, purpose: str, now: datetime
) -> Subscriber:
    """The subscriber a valid token of `purpose` names; SubscriptionError otherwise, with
    the same words (`tokens.INVALID`) for every bad token."""
    claim = parse_token(token.strip(), purpose)
    sub = store.subscriber(claim.subscriber_id)
    if sub is None:
        # The same work and the same answer as a forged token for a real reader: the
        # reply (and its time) does not tell which subscriber ids exist.
        make_token(secret, purpose, claim.subscriber_id, "", now)
        raise SubscriptionError(INVALID)
    verify(secret, claim, sub.email, now)
    return sub


def confirm(config: Config, store: Store, token: str, now: datetime) -> Subscriber:
    """Confirm the subscriber a valid confirm token names (idempotent)."""
    sub = subscriber_for(store, load_secret(config), token, "confirm", now)
    if sub.status == "unsubscribed":
        raise SubscriptionError("this address unsubscribed; subscribe again to get digests")
    store.set_subscriber_status(sub.id, "confirmed", now)
    return store.subscriber(sub.id) or sub


def unsubscribe(
    config: Config,
    store: Store,
    address_or_token: str,
    now: datetime,
    *,
    profile: str | None = None,
) -> tuple[Subscriber, bool]:
    """Unsubscribe by address (operator) or by token (reader); or drop one profile.

    Returns the subscriber and whether anything changed (unsubscribing twice is fine).
    """
    if "@" in address_or_token:
        sub = store.subscriber_by_email(normalize_email(address_or_token))
        if sub is None:
            raise SubscriptionError(f"no subscriber {address_or_token!r}")
    else:
        sub = subscriber_for(store, load_secret(config), address_or_token, "unsubscribe", now)
    if profile is not None:
        if not store.remove_profile(sub.id, profile):
            names = ", ".join(p.name for p in sub.profiles) or "none"
            raise SubscriptionError(f"{sub.email} has no profile {profile!r} (has: {names})")
        return store.subscriber(sub.id) or sub, True
    changed = store.set_subscriber_status(sub.id, "unsubscribed", now)
    return store.subscriber(sub.id) or sub, changed


def unsubscribe_or_queue(
    config: Config, store: Store, token: str, now: datetime
) -> tuple[Subscriber, bool]:
    """Unsubscribe the holder of a valid unsubscribe token; True when it was queued.

    The token is checked first (a read: never blocked by another process's write). If
    the write then finds the store busy past its timeout, the unsubscribe is queued
    beside the store (`store.journal`), durably, and applied by the next opener, so a
    valid one-click unsubscribe is never refused for being at a bad moment.
    """
    sub = subscriber_for(store, load_secret(config), token, "unsubscribe", now)
    try:
        store.set_subscriber_status(sub.id, "unsubscribed", now)
    except StoreBusy:
        store.queue_unsubscribe(QueuedUnsubscribe(sub.id, sub.email, now))
        return sub, True
    return sub, False
