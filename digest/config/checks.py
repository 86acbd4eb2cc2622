"""Checks of the values a message needs, made when config.toml is loaded.

A digest is claimed (and its papers entered in the sent-ledger) before it is handed to
the backend, so a sender address or a link that the backend would refuse must be found
here, before anything is claimed: otherwise every digest of the run is burnt.

Each check returns "" when the value is fine, else why it is not (the caller names the
file, the key and the value). `SECRET_KEYS` are keys whose value is never repeated in a
message: a secret pasted into the wrong key must not end up in a log.
"""

from __future__ import annotations

import math
import re
from email.utils import parseaddr
from urllib.parse import SplitResult, urlsplit, urlunsplit

#: An environment variable's name (POSIX portable: what a shell can export).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: An ASCII addr-spec as relays take it: dot-atom local part, a domain of labels.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
#: Characters that may not stand in a URL placed in a header or a link as it is.
_URL_UNSAFE = frozenset(' \t<>"`{}|\\^,')
#: The longest wait a network timeout may be set to: more is a typo, not a setting.
MAX_TIMEOUT = 3600.0
#: Keys whose values are secrets or may hold one pasted by mistake: never shown.
SECRET_KEYS = frozenset({"secret", "password", "api_key", "password_env", "api_key_env"})
#: The shortest signing secret accepted, in bytes (HMAC-SHA256 wants at least 32).
MIN_SECRET_BYTES = 32


def address_problem(address: str) -> str:
    """Why `address` is not a plain ASCII email address a relay takes, or ""."""
    if address != address.strip():
        return "has spaces around it"
    if not address.isascii():
        return "must be ASCII (an internationalised address needs SMTPUTF8, which relays lack)"
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        return "not an email address like digest@example.org"
    local, _, domain = address.rpartition("@")
    if len(local) > 64 or len(domain) > 253:
        return "not an email address like digest@example.org"
    return ""


def sender_problem(value: str) -> str:
    """Why `value` is not a From header of the form 'Name <address>' or 'address', or ""."""
    if value != value.strip() or not value:
        return "has spaces around it" if value else "is empty"
    if not value.isprintable():
        return "holds control characters"
    name, address = parseaddr(value)
    if not address:
        return "no email address in it; use 'Name <digest@example.org>'"
    if value == address:
        return address_problem(address)
    if "(" in value or ")" in value or (value != f"{name} <{address}>" and not _quoted(value)):
        return "use the form 'Name <digest@example.org>' (no comments, one address)"
    if any(ch in name for ch in '<>@,;:"') and not _quoted(value):
        return "quote a name with <>@,;: in it: '\"Name\" <digest@example.org>'"
    return address_problem(address)


def _quoted(value: str) -> bool:
    """'"Name, with specials" <address>': a quoted display name then one address."""
    return re.fullmatch(r'"(?:[^"\\]|\\.)*" <[^<>\s]+>', value) is not None


def url_problem(url: str) -> str:
    """Why `url` is not an absolute http(s) URL that can go in a link as it is, or ""."""
    if not url.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    if not url.isascii():
        return "must be ASCII (percent-encode or punycode the rest)"
    if not url.isprintable() or any(ch in _URL_UNSAFE for ch in url):
        return "holds a space, a quote or a character links cannot carry; percent-encode it"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a bad port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if not parts.hostname:
        return "has no host name"
    if parts.query or parts.fragment:
        return "must not have a ?query or #fragment (links are built below it)"
    return ""


def timeout_problem(value: float) -> str:
    """Why `value` is not a usable network timeout in seconds, or ""."""
    if not math.isfinite(value) or value <= 0:
        return "must be a number of seconds above 0"
    if value > MAX_TIMEOUT:
        return f"must be at most {MAX_TIMEOUT:g} seconds"
    return ""


def env_name_problem(value: str) -> str:
    """Why `value` is not the name of an environment variable, or "" (never echoes it)."""
    if _ENV_NAME.fullmatch(value):
        return ""
    return (
        "must be the NAME of an environment variable (letters, digits, _), not its value; "
        "the value is not shown in case it is a secret"
    )


def host_problem(host: str) -> str:
    """Why `host` is not a host name or IP address to connect to, or ""."""
    if not host or host != host.strip() or any(ch.isspace() for ch in host):
        return "must be a host name or address, without spaces"
    if not host.isascii() or not host.isprintable() or any(ch in host for ch in "/@?#"):
        return "must be a host name or address (ASCII; no scheme, path or user)"
    return ""


def secret_problem(secret: str) -> str:
    """Why `secret` cannot sign tokens, or "" (never echoes it)."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return (
            f"too short: a signing secret needs at least {MIN_SECRET_BYTES} bytes "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return ""


# -- the store's URL -----------------------------------------------------------------------


def store_url_problem(url: str) -> str:
    """Why `url` cannot name a PostgreSQL store, or "" (libpq reads the rest itself)."""
    if not url.startswith(("postgresql://", "postgres://")):
        return "must start with postgresql:// (a PostgreSQL store); leave it out for SQLite"
    try:
        urlsplit(url).port  # noqa: B018  # raises ValueError for a bad port
    except ValueError as exc:
        return f"not a URL ({exc}); write it as postgresql://user@host:port/database"
    return ""


def redacted_url(url: str) -> str:
    """The URL without its password (in the user part or a `password=` parameter): what
    messages and `digest config check` show of a store's URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unreadable URL)"
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)password=[^&]*", r"\1password=***", parts.query)
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str | None:
    """The password the URL carries (to cut it out of a driver's message), or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    found = re.search(r"(?i)(?:^|&)password=([^&]*)", parts.query)
    return parts.password or (found[1] if found else None)
