"""What every source parser is: bytes in, `Paper`s out, warnings through a callback."""

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
