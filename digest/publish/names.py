"""Names in the published site: file names, slugs, Atom ids, the text filter.

Every name is a pure function of one stable input (a paper id, a profile name, a day), so
a permalink never changes when other papers or profiles come and go, and an Atom id never
changes when the site moves to another address. Untrusted text never becomes a path
component without being reduced to `[a-z0-9._-]`.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from urllib.parse import quote

from digest.links import paper_file as paper_file  # re-exported: the site names its pages here
from digest.links import short_hash

#: The authority of our `tag:` URIs (RFC 4151). Never change it: feed readers key on it.
TAG_AUTHORITY = "papers-digest"
#: Slugs a profile may not take because a page of the site already has that name.
_RESERVED = frozenset({"all", "index"})
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Controls (except tab/newline), bidi embeddings/overrides/isolates, lone surrogates and
# the non-characters XML 1.0 forbids: they disguise text or break a feed's well-formedness.
_UNSAFE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
_SPACES = re.compile(r"\s+")


def profile_slug(name: str) -> str:
    """A file-name-safe slug of a profile name (user text).

    A name that is already a plain lowercase slug keeps it (`efficient-llms`); any other
    name gets its ASCII reduction plus a short hash of the name, so `Speech!` and `speech`
    never collide and the slug depends on nothing but the name.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    base = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:50].strip("-")
    if base and base == name and base not in _RESERVED:
        return base
    return f"{base or 'profile'}-{short_hash(name, 6)}"


def unique_slugs(names: list[str]) -> list[str]:
    """Slugs for a list of profile names; a repeated name gets `-2`, `-3` ..."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        slug = profile_slug(name)
        seen[slug] = seen.get(slug, 0) + 1
        out.append(slug if seen[slug] == 1 else f"{slug}-{seen[slug]}")
    return out


def day_of(moment: datetime) -> date:
    """The UTC date of a timestamp (naive timestamps are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(UTC).date()


def atom_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as Atom wants (`2025-10-16T00:00:00Z`)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_id(day: date, paper_id: str) -> str:
    """The Atom entry id of a paper picked on a day: depends on nothing else."""
    return f"tag:{TAG_AUTHORITY},{day.isoformat()}:{quote(paper_id, safe='')}"


def feed_id(slug: str) -> str:
    """The Atom feed id of a profile feed (`all` for the feed of every pick)."""
    return f"tag:{TAG_AUTHORITY},2025:feeds/{slug}"


def plain(text: object) -> str:
    """Text safe to show anywhere, spaces kept at the ends (for highlight segments)."""
    out = str(text)
    # Printable text has none of `_UNSAFE` (controls, format characters such as the bidi
    # ones, surrogates and non-characters are all unprintable) and no white space but
    # " ": most titles and abstracts, which then skip the regex's scan.
    if out.isprintable():
        return _SPACES.sub(" ", out) if "  " in out else out
    out = _UNSAFE.sub("", out)
    # Checking is far cheaper than substituting every single space of an abstract;
    # isprintable() is False for any white space but " " (and for a few harmless others).
    return _SPACES.sub(" ", out) if "  " in out or not out.isprintable() else out


def shorten(text: object, limit: int = 160) -> str:
    """Cleaned text cut to `limit` characters with an ellipsis (for <title> and labels)."""
    out = plain(text).strip()
    return out if len(out) <= limit else out[: limit - 1].rstrip() + "…"
