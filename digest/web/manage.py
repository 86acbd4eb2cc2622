"""GET/POST /manage?token=T: a reader edits, adds and removes profiles, changes time and
frequency, pauses and resumes, sees their last digests, and rates their papers (or
withdraws a rating).

The signed manage token names the reader; every POST carries the form's CSRF value too,
and answers with a redirect back to the page (so a reload does not post again). Changes
are stored at once: the planner reads them for the next digest; a digest already
claimed goes out as it was claimed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import Response

from digest import rank, subscriptions
from digest.errors import DigestError, SubscriptionError
from digest.frozen import records_for, thaw_compact
from digest.links import link
from digest.model import VOTES, Delivery, Profile, Rating, Subscriber
from digest.store import Store
from digest.web.pages import Site, read_form, see_other

Endpoint = Callable[[Request], Awaitable[Response]]
#: Digests listed on the page.
LAST_DIGESTS = 5
#: What each action's redirect says on the page.
DONE = {
    "settings": "Saved: your time and frequency apply from the next digest.",
    "profile": "Saved: the profile applies from the next digest.",
    "remove": "Removed the profile.",
    "pause": "Paused: no digests until you resume.",
    "resume": "Resumed: digests start again with the next one.",
    "rate": "Saved your rating: your next digests learn from it.",
    "unrate": "Removed the rating.",
}
_ZONES = tuple(sorted(available_timezones()))


@dataclass(frozen=True, slots=True)
class PastDigest:
    """A digest the reader got, for the list on the page."""

    day: str
    state: str
    titles: tuple[str, ...]
    ids: tuple[str, ...] = ()  #: the papers' ids, one per title (to rate them)


def handler(site: Site) -> Endpoint:
    """The /manage endpoint."""

    async def endpoint(request: Request) -> Response:
        token = request.query_params.get("token", "")
        now = site.clock()
        secret = site.secret
        if request.method == "POST":
            form = await read_form(request)
            if not site.csrf_valid(request, form):
                return site.csrf_refused(request, f"/manage?token={quote(token)}")
            action = form.get("action", "")
            try:
                await site.with_store(lambda store: _act(store, secret, token, action, form, now))
            except DigestError as exc:
                return await _page(site, request, token, now, error=str(exc), status=400)
            return see_other(f"/manage?token={quote(token)}&done={quote(action)}")
        done = DONE.get(request.query_params.get("done", ""), "")
        return await _page(site, request, token, now, done=done)

    return endpoint


def _act(
    store: Store, secret: bytes, token: str, action: str, form: Mapping[str, str], now: datetime
) -> None:
    """Do one action of the manage page for the reader the token names."""
    sub = subscriptions.subscriber_for(store, secret, token, "manage", now)
    if sub.status == "unsubscribed":
        raise SubscriptionError("this address unsubscribed; subscribe again to change it")
    if action == "settings":
        timezone = form.get("timezone", "").strip() or None
        send_at = form.get("send_at", "").strip() or None
        frequency = form.get("frequency", "").strip() or None
        subscriptions.check_settings(
            timezone, send_at, frequency, labels=("time zone", "send time", "frequency")
        )
        store.upsert_subscriber(
            sub.email, None, now=now, timezone=timezone, send_at=send_at, frequency=frequency
        )
    elif action == "profile":
        _save_profile(store, sub, form, now)
    elif action == "remove":
        name = form.get("name", "")
        if len(sub.profiles) <= 1:
            raise SubscriptionError("a digest needs one profile; unsubscribe to stop it instead")
        if not store.remove_profile(sub.id, name):
            raise SubscriptionError(f"there is no profile {name!r}")
    elif action in ("pause", "resume"):
        store.set_paused(sub.id, action == "pause", now)
    elif action == "rate":
        vote = VOTES.get(form.get("vote", ""))
        if vote is None or not store.rate(sub.id, form.get("paper", ""), vote, now, via="manage"):
            raise SubscriptionError("choose “more like this” or “not for me” for a listed paper")
    elif action == "unrate":
        store.unrate(sub.id, form.get("paper", ""))
    else:
        raise SubscriptionError(f"unknown action {action!r}")


def _save_profile(store: Store, sub: Subscriber, form: Mapping[str, str], now: datetime) -> None:
    """Add a profile, or replace (and maybe rename) the one named `original`."""
    name = " ".join(form.get("name", "").split())[:60] or subscriptions.DEFAULT_PROFILE
    original = form.get("original", "")
    known = {p.name: p for p in sub.profiles}
    if original and original not in known:
        raise SubscriptionError(f"there is no profile {original!r}")
    if name in known and name != original:
        raise SubscriptionError(f"there is a profile {name!r} already; choose another name")
    before: Profile | None = known.get(original)
    profile = rank.make_profile(
        name,
        form.get("keywords", ""),
        form.get("exclude", ""),
        max_items=before.max_items if before else None,
        min_score=before.min_score if before else None,
    )
    store.upsert_subscriber(sub.email, profile, now=now)
    if original and original != name:
        store.remove_profile(sub.id, original)


async def _page(
    site: Site,
    request: Request,
    token: str,
    now: datetime,
    *,
    done: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    secret = site.secret

    def read(store: Store) -> tuple[Subscriber, list[PastDigest], list[Rating]]:
        sub = subscriptions.subscriber_for(store, secret, token, "manage", now)
        past = _past(store, store.recent_deliveries(sub.id, LAST_DIGESTS))
        return sub, past, store.ratings(sub.id)

    try:
        sub, past, ratings = await site.with_store(read)
    except DigestError as exc:
        return site.message(request, "Bad request", str(exc), 400)
    profiles = [(p, *rank.profile_text(p)) for p in sub.profiles]
    return site.page(
        request,
        "manage.html.j2",
        status,
        title="Your papers-digest",
        sub=sub,
        profiles=profiles,
        past=past,
        ratings=ratings,
        rated={r.paper_id: r.label for r in ratings},
        done=done,
        error=error,
        action=f"/manage?token={token}",
        unsubscribe=link(site.config, secret, "unsubscribe", sub, now),
        zones=_ZONES,
    )


def _past(store: Store, deliveries: list[Delivery]) -> list[PastDigest]:
    """The digests' days, states and item titles (thawed as the sender thaws them)."""
    records = records_for((d.content for d in deliveries), store.frozen_items)
    out = []
    for d in deliveries:
        try:
            digest = thaw_compact(d.content, records)
        except (ValueError, KeyError, TypeError):  # a damaged claim: its day, no titles
            titles: tuple[str, ...] = ()
            ids: tuple[str, ...] = ()
        else:
            titles = tuple(i.paper.title for s in digest.sections for i in s.items)
            ids = tuple(i.paper.id for s in digest.sections for i in s.items)
        out.append(PastDigest(d.digest_date.isoformat(), d.state, titles, ids))
    return out
