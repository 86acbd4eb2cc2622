"""GET/POST /subscribe and its live preview: double opt-in from a browser.

A POST must carry the form's CSRF value, and is limited per client (`Site.per_client`);
a filled honeypot field gets the usual answer and does nothing. Every valid address
gets the same page whether or not it is known, and at most `Site.per_address` emails a
day: a new or pending address its confirmation link, a subscribed one its manage link
(its profiles are not touched: only the holder of the address can change them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from zoneinfo import available_timezones

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from digest import pipeline, rank, subscriptions
from digest.errors import DigestError
from digest.links import link
from digest.model import Profile
from digest.render.notices import manage_email
from digest.store import Store
from digest.web.guard import client_key
from digest.web.pages import Site, read_form

#: The honeypot: hidden from people (and from screen readers), filled by form robots.
HONEYPOT = "website"
#: Items the live preview lists.
PREVIEW_ITEMS = 10
_ZONES = tuple(sorted(available_timezones()))
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class SubscribeForm:
    """What a valid subscribe form asks for."""

    email: str  #: normalised
    profile: Profile
    timezone: str
    send_at: str
    frequency: str


def parse_form(form: Mapping[str, str]) -> SubscribeForm:
    """The form's fields checked; DigestError names the first one that is wrong."""
    email = subscriptions.normalize_email(form.get("email", ""))
    timezone = form.get("timezone", "").strip() or "UTC"
    send_at = form.get("send_at", "").strip() or "07:00"
    frequency = form.get("frequency", "").strip() or "daily"
    subscriptions.check_settings(
        timezone, send_at, frequency, labels=("time zone", "send time", "frequency")
    )
    profile = rank.make_profile(
        subscriptions.DEFAULT_PROFILE, form.get("keywords", ""), form.get("exclude", "")
    )
    return SubscribeForm(email, profile, timezone, send_at, frequency)


def handler(site: Site) -> Endpoint:
    """The /subscribe endpoint."""

    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return _form(site, request, {})
        form = await read_form(request)
        if not site.csrf_valid(request, form):
            return site.csrf_refused(request, "/subscribe")
        if form.get(HONEYPOT):
            return _sent(site, request, form.get("email", ""))
        if not site.per_client.allow(client_key(request.scope)):
            return site.message(
                request, "Too many requests", "Too many sign-ups from here; try in an hour.", 429
            )
        try:
            wanted = parse_form(form)
        except DigestError as exc:
            return _form(site, request, form, error=str(exc), status=400)
        if site.per_address.allow(wanted.email):
            status = await site.with_store(lambda store: _subscribe(site, store, wanted))
            if status != "sent":
                return site.message(
                    request,
                    "Not sent yet",
                    "The email could not be sent just now; please try again later.",
                    503,
                )
        return _sent(site, request, wanted.email)

    return endpoint


def _subscribe(site: Site, store: Store, wanted: SubscribeForm) -> str:
    """Mail the address its confirmation (new, pending) or manage link (subscribed)."""
    now = site.clock()
    known = store.subscriber_by_email(wanted.email)
    if known is not None and known.status in ("confirmed", "paused"):
        manage = link(site.config, site.secret, "manage", known, now)
        backend = site.backend()
        try:
            (outcome,) = backend.send([manage_email(site.config.delivery, known, manage, now)])
        finally:
            backend.close()
        return outcome.status
    report = pipeline.subscribe(
        site.config,
        store,
        wanted.email,
        wanted.profile,
        now,
        open_backend=site.backend,
        timezone=wanted.timezone,
        send_at=wanted.send_at,
        frequency=wanted.frequency,
    )
    return report.confirmation or "sent"


def _form(
    site: Site, request: Request, form: Mapping[str, str], *, error: str = "", status: int = 200
) -> Response:
    values = {
        "email": form.get("email", request.query_params.get("email", "")),
        "keywords": form.get("keywords", request.query_params.get("keywords", "")),
        "exclude": form.get("exclude", ""),
        "timezone": form.get("timezone", ""),
        "send_at": form.get("send_at", "07:00"),
        "frequency": form.get("frequency", "daily"),
    }
    return site.page(
        request,
        "subscribe.html.j2",
        status,
        title="Subscribe",
        values=values,
        error=error,
        zones=_ZONES,
        honeypot=HONEYPOT,
    )


def _sent(site: Site, request: Request, email: str) -> Response:
    return site.message(
        request,
        "Check your inbox",
        f"If {email} can receive mail, a message is on its way to it. Open the link in it "
        "to confirm (it works for 7 days); nothing is sent until you do.",
    )


def preview_handler(site: Site) -> Endpoint:
    """GET /subscribe/preview?keywords=...&exclude=...&frequency=...: JSON of the digest
    those keywords would bring today (the live preview of the form)."""

    async def endpoint(request: Request) -> Response:
        refused = site.preview_refusal(request)
        if refused is not None:
            status, why = refused
            return JSONResponse({"error": why, "items": []}, status)
        query = request.query_params
        frequency = query.get("frequency", "daily")
        try:
            if frequency not in ("daily", "weekly"):
                raise DigestError("frequency: use daily or weekly")
            profile = rank.make_profile(
                "preview", query.get("keywords", ""), query.get("exclude", "")
            )
        except DigestError as exc:
            return JSONResponse({"error": str(exc), "items": []}, 200)
        now = site.clock()
        window = pipeline.recent_window(now, frequency)

        def rank_today(store: Store) -> dict[str, object]:
            digest, _ = pipeline.preview(
                site.config, store, profile, now, "text", window, keep_keywords=False
            )
            items = [i for s in digest.sections for i in s.items]
            more = sum(s.more for s in digest.sections) + max(0, len(items) - PREVIEW_ITEMS)
            return {
                "error": "",
                "considered": digest.papers_considered,
                "window": window.label,
                "items": [{"title": i.paper.title, "why": i.why} for i in items[:PREVIEW_ITEMS]],
                "more": more,
                "notes": list(digest.notes),
            }

        return JSONResponse(await site.run_preview(rank_today))

    return endpoint
