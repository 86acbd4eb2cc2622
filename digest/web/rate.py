"""GET/POST /rate?token=T&paper=ID&vote=like|dislike|clear: a reader rates a paper from
the links under every item of their email.

The token is the reader's rating token (one per reader and email, `links.link(...,
"rate", ...)`); the paper and the vote are the link's own parameters, checked here
against a stored paper. GET only shows one button, so a mail scanner or prefetcher that
follows every link records nothing; POST records, and needs no CSRF value: the signed
token in its URL is the proof, as for unsubscribe. Rating again replaces the rating
(the same answer twice is the same page); "clear" withdraws it (the Undo button).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from digest import subscriptions
from digest.errors import DigestError, SubscriptionError
from digest.model import VOTES, Paper, Rating, Subscriber
from digest.store import Store
from digest.text import clean
from digest.web.pages import Site

Endpoint = Callable[[Request], Awaitable[Response]]
#: What each vote is called on the pages, and the button that records it.
ANSWER = {"like": "more like this", "dislike": "not for me"}
BUTTON = {"like": "More like this", "dislike": "Not for me", "clear": "Remove my rating"}


@dataclass(frozen=True, slots=True)
class _Asked:
    """A checked rating request: who, which paper, what they rated it before."""

    sub: Subscriber
    paper: Paper
    before: Rating | None


def handler(site: Site) -> Endpoint:
    """The /rate endpoint."""

    async def endpoint(request: Request) -> Response:
        query = request.query_params
        token, paper_id, vote = (
            query.get("token", ""),
            query.get("paper", ""),
            query.get("vote", ""),
        )
        now = site.clock()
        if request.method == "POST":
            await request.body()  # the button's form sends nothing the URL does not say
        try:
            if vote not in BUTTON:
                raise SubscriptionError(
                    f"vote {vote[:20]!r} is not one of like, dislike, clear; use the links "
                    "in your latest email"
                )
            asked = await site.with_store(
                lambda store: _act(store, site.secret, token, paper_id, vote, now, request.method)
            )
        except DigestError as exc:
            return site.message(request, "Bad request", str(exc), 400)
        title = clean(asked.paper.title)
        here = "rate?" + urlencode({"token": token, "paper": paper_id, "vote": vote})
        if request.method == "GET":
            return _question(site, request, asked, title, vote, here)
        if vote == "clear":
            return site.message(request, "Rating removed", f"You no longer rate “{title}”.")
        undo = "rate?" + urlencode({"token": token, "paper": paper_id, "vote": "clear"})
        return site.message(
            request,
            "Thank you",
            f"Recorded: “{title}” is {ANSWER[vote]}. Your next digests learn from it; "
            "rating it again replaces this.",
            form_action=undo,
            button="Undo",
        )

    return endpoint


def _act(
    store: Store,
    secret: bytes,
    token: str,
    paper_id: str,
    vote: str,
    now: datetime,
    method: str,
) -> _Asked:
    """Check the request; on POST record (or withdraw) the rating."""
    sub = subscriptions.subscriber_for(store, secret, token, "rate", now)
    if sub.status == "unsubscribed":
        raise SubscriptionError("this address unsubscribed; subscribe again to rate papers")
    paper = store.paper(paper_id) if paper_id else None
    if paper is None:
        raise SubscriptionError(
            "this link names no paper this digest knows; use the links in your latest email"
        )
    before = store.rating(sub.id, paper.id)
    if method == "POST":
        if vote == "clear":
            store.unrate(sub.id, paper.id)
        else:
            store.rate(sub.id, paper.id, VOTES[vote], now, via="email")
    return _Asked(sub, paper, before)


def _question(
    site: Site, request: Request, asked: _Asked, title: str, vote: str, here: str
) -> Response:
    """The GET page: what the button will do, and what the reader said before."""
    before = asked.before
    if vote == "clear":
        if before is None:
            return site.message(request, "Not rated", f"You have not rated “{title}”.")
        text = f"Remove your rating of “{title}” ({ANSWER[before.label]})?"
        return site.message(request, "Remove rating?", text, form_action=here, button=BUTTON[vote])
    said = ""
    if before is not None:
        said = (
            " You rated it the same way already; sending it again keeps it."
            if before.label == vote
            else f" You said “{ANSWER[before.label]}” before; this replaces it."
        )
    text = f"Tell papers-digest that “{title}” is {ANSWER[vote]}?{said}"
    return site.message(request, f"{BUTTON[vote]}?", text, form_action=here, button=BUTTON[vote])
