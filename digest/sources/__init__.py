"""Sources: one module per kind of input, each turning bytes into `Paper` records.

A parser never raises for one bad entry: it reports a `SourceWarning` (file and line)
through the `warn` callback and goes on, so the good entries of a file are kept.
The registry maps the `kind` string of a `[[sources]]` table to its parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Protocol

from digest.model import Paper, SourceWarning

WarnFn = Callable[[SourceWarning], None]


class Parser(Protocol):
    """Turns one fetched or read document into papers."""

    def __call__(
        self, data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
    ) -> Iterator[Paper]: ...


def _registry() -> dict[str, Parser]:
    from digest.sources import listing

    return {"listing": listing.parse}


def parser_for(kind: str) -> Parser | None:
    """The parser registered for a `kind`, or None when the kind is unknown."""
    return _registry().get(kind)


def known_kinds() -> list[str]:
    return sorted(_registry())
