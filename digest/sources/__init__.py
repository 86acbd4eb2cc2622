"""Sources: one module per kind of input, each turning bytes into `Paper` records.

A parser never raises for one bad entry: it reports a `SourceWarning` (file and line)
through the `warn` callback and goes on, so the good entries of a file are kept.
The registry maps the `kind` string of a `[[sources]]` table to its parser; kind `auto`
(and every file named on the command line) is told by content (`sources.detect`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from digest.model import Paper
from digest.sources.base import Parser, WarnFn

__all__ = ["Parser", "WarnFn", "known_kinds", "parse_listing", "parser_for"]


#: The kinds `_registry` maps, named here so that checking a config's `kind` (every
#: command loads the config) imports no parser.
KINDS = ("auto", "feed", "hf_daily", "listing")


def _registry() -> dict[str, Parser]:
    # Parsers load when first asked for: feedparser and selectolax cost start-up time.
    from digest.sources import feed, hf_api

    return {
        "auto": parse_any,
        "listing": parse_listing,
        "hf_daily": hf_api.parse,
        "feed": feed.parse,
    }


def parse_any(
    data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[Paper]:
    """Any document a source may be: its kind told by its content (`detect.sniff`)."""
    from digest.sources.detect import sniff

    parser = _registry()[sniff(data, origin)]
    return parser(data, origin=origin, source=source, captured=captured, warn=warn)


def parse_listing(
    data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[Paper]:
    """A Hugging Face listing page: an HTML page or a text capture, told apart by content."""
    from digest.sources import html_listing, listing

    head = data[:2048].lstrip()
    if head.startswith(b"<"):  # a text capture starts with words
        return html_listing.parse(data, origin=origin, source=source, captured=captured, warn=warn)
    if head[:1] in (b"{", b"[") and listing.is_json(data):
        from digest.errors import SourceError

        raise SourceError(
            f"{origin}: JSON, not a listing page or capture; read it as kind hf_daily"
            " (or auto, which tells kinds by content)"
        )
    return listing.parse(data, origin=origin, source=source, captured=captured, warn=warn)


def parser_for(kind: str) -> Parser | None:
    """The parser registered for a `kind`, or None when the kind is unknown."""
    return _registry().get(kind)


def known_kinds() -> list[str]:
    """The `kind` strings a `[[sources]]` table may name (no parser is imported)."""
    return sorted(KINDS)
