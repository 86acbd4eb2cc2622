"""Links in a reader's email and pages: signed (tokens.py), pointing at the public site.

Beside tokens.py so that sending, the web pages and subscriptions build links the same
way without importing one another.
"""

from __future__ import annotations

from datetime import datetime

from digest.config import Config
from digest.model import Subscriber
from digest.tokens import make_token


def public_url(config: Config) -> str:
    """Where confirm/unsubscribe links point: [delivery] public_url, the site, or localhost."""
    url = config.delivery.public_url or config.publish.base_url or "http://127.0.0.1:8000/"
    return url if url.endswith("/") else url + "/"


def link(config: Config, secret: bytes, purpose: str, sub: Subscriber, now: datetime) -> str:
    """A signed link for `purpose` ("confirm", "unsubscribe", "manage") for this reader."""
    token = make_token(secret, purpose, sub.id, sub.email, now)
    return f"{public_url(config)}{purpose}?token={token}"
