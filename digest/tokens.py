"""Signed, expiring tokens for confirm, unsubscribe, manage and rating links.

A token is `purpose.subscriber-id.expiry.signature`; the signature is an HMAC-SHA256
over the purpose, the id, the expiry AND the subscriber's current address, with a secret
from the environment (`DIGEST_SECRET`), config.toml (`[security] secret`) or, for a local
install, a random one kept in var/secret. So a token can act only for the subscriber it
was made for, only for its purpose, and not after it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from digest.config import Config
from digest.config.checks import secret_problem
from digest.errors import ConfigError, SubscriptionError

PURPOSES = ("confirm", "unsubscribe", "manage", "rate")
#: ASCII digits in their one canonical spelling (no leading zeros, no sign), of a size
#: SQLite can hold: one token has one spelling.
_NUMBER = re.compile(r"0|[1-9][0-9]{0,14}")
_SIGNATURE = re.compile(r"[0-9a-f]{40}")
#: The one message for every bad token (malformed, forged, expired, for another or no
#: subscriber): what a token page says must not tell real subscriber ids from made-up ones.
INVALID = "this link's token is not valid or has expired; use the link in your latest email"
#: How long each kind of link works. Unsubscribe links in old emails must keep working.
LIFETIME = {
    "confirm": timedelta(days=7),
    "unsubscribe": timedelta(days=3650),
    "manage": timedelta(days=3650),
    # One per reader and email, for every item's rating links: it can only record
    # ratings (not manage), and an old digest's links keep working.
    "rate": timedelta(days=3650),
}


def load_secret(config: Config, env: Mapping[str, str] = os.environ) -> bytes:
    """The signing secret: DIGEST_SECRET, then [security] secret, then var/secret (created)."""
    if env.get("DIGEST_SECRET"):
        problem = secret_problem(env["DIGEST_SECRET"])
        if problem:  # the value itself is never shown
            raise ConfigError(f"environment variable DIGEST_SECRET: {problem}")
        return env["DIGEST_SECRET"].encode()
    if config.secret:
        return config.secret.encode()
    path = config.store_path.parent / "secret"
    if not path.exists():
        # Written whole to a private temp file, then linked into place: a crash or a
        # second process never sees a half-written (or empty) secret.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process won the race: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = Path(path).read_text().strip()
    if len(secret) < 32:
        raise ConfigError(
            f"{path}: the signing secret is too short; delete the file to make a new one"
        )
    return secret.encode()


def _mac(secret: bytes, purpose: str, sid: int, expiry: int, email: str) -> str:
    msg = f"{purpose}.{sid}.{expiry}.{email}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:40]


def make_token(secret: bytes, purpose: str, subscriber_id: int, email: str, now: datetime) -> str:
    """A token for `purpose` that works until now + LIFETIME[purpose]."""
    expiry = int((now + LIFETIME[purpose]).timestamp())
    return (
        f"{purpose}.{subscriber_id}.{expiry}.{_mac(secret, purpose, subscriber_id, expiry, email)}"
    )


@dataclass(frozen=True, slots=True)
class TokenClaim:
    """What a well-formed token claims; check it with `verify` against the subscriber."""

    purpose: str
    subscriber_id: int
    expiry: int
    signature: str


def parse_token(token: str, purpose: str) -> TokenClaim:
    """The parts of a token of `purpose`; SubscriptionError if it is malformed."""
    parts = token.split(".")
    if (
        len(parts) != 4
        or parts[0] != purpose
        or not all(_NUMBER.fullmatch(p) for p in parts[1:3])
        or not _SIGNATURE.fullmatch(parts[3])
    ):
        raise SubscriptionError(INVALID)
    return TokenClaim(parts[0], int(parts[1]), int(parts[2]), parts[3])


def verify(secret: bytes, claim: TokenClaim, email: str, now: datetime) -> None:
    """Raise SubscriptionError unless the claim is signed for this subscriber and not expired."""
    expected = _mac(secret, claim.purpose, claim.subscriber_id, claim.expiry, email)
    if not hmac.compare_digest(expected, claim.signature) or now.timestamp() > claim.expiry:
        raise SubscriptionError(INVALID)
