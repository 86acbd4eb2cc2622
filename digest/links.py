"""Links in a reader's email and pages: signed (tokens.py), pointing at the public site.

Beside tokens.py so that sending, the web pages and subscriptions build links the same
way without importing one another.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from datetime import datetime
from urllib.parse import urlsplit

from digest.config import Config
from digest.errors import ConfigError
from digest.model import Subscriber
from digest.tokens import make_token

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def short_hash(text: str, length: int = 8) -> str:
    """A short stable hex hash of `text`, to keep reduced names distinct."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()[
        :length
    ]


def paper_file(paper_id: str) -> str:
    """`papers/<file>.html` name of a paper: its id when that is a safe file name, else a
    readable reduction of it plus a hash of the id (so two ids never share a page)."""
    if _SAFE_ID.fullmatch(paper_id) and ".." not in paper_id:
        return f"{paper_id}.html"
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", paper_id).strip("._-")[:60]
    return f"{base or 'paper'}-{short_hash(paper_id)}.html"


def public_url(config: Config) -> str:
    """Where confirm/unsubscribe links point: [delivery] public_url, the site, or localhost."""
    url = config.delivery.public_url or config.publish.base_url or "http://127.0.0.1:8000/"
    return url if url.endswith("/") else url + "/"


def link(config: Config, secret: bytes, purpose: str, sub: Subscriber, now: datetime) -> str:
    """A signed link for `purpose` ("confirm", "unsubscribe", "manage", "rate") for this
    reader. A rate link is completed per item with `&paper=ID&vote=like|dislike`."""
    token = make_token(secret, purpose, sub.id, sub.email, now)
    return f"{public_url(config)}{purpose}?token={token}"


def _is_local(host: str) -> bool:
    """Whether `host` names this machine only (localhost, a loopback address, empty)."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def check_live_links(config: Config, *, allow_local: bool = False) -> None:
    """Refuse to mail real readers links or a sender that only work on this machine.

    With any backend but the outbox, `[delivery] public_url` (or `[publish] base_url`)
    must be set and not a loopback address, and the `from` address must not be on
    localhost; ConfigError (one line) otherwise, unless `allow_local`.
    """
    delivery = config.delivery
    if allow_local or delivery.backend == "outbox":
        return
    how = f"the {delivery.backend} backend would mail real readers"
    if not (delivery.public_url or config.publish.base_url):
        raise ConfigError(
            f"{config.path}: [delivery] public_url is not set: {how} links to "
            f"{public_url(config)}; set it to where `digest serve` is reachable, "
            "or pass --allow-local-links"
        )
    host = urlsplit(public_url(config)).hostname or ""
    if _is_local(host):
        raise ConfigError(
            f"{config.path}: [delivery] public_url {public_url(config)!r} is on this machine: "
            f"{how} links that work nowhere else; use a public address, or pass "
            "--allow-local-links"
        )
    domain = delivery.from_addr.rpartition("@")[2].rstrip(">").strip()
    if _is_local(domain):
        raise ConfigError(
            f"{config.path}: [delivery] from {delivery.from_addr!r} is on localhost: {how} "
            "mail that most servers reject; set a real sender, or pass --allow-local-links"
        )
