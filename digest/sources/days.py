"""The day a document names for itself: in its URL or its file name.

    https://huggingface.co/api/daily_papers?date=2025-07-22   the `date=` of the query
    https://huggingface.co/papers/date/2025-07-22             the last part of the path
    archive/2025-07-22.json, hf-2025-07-22-page.html          a YYYY-MM-DD in the file name

A document that names no day gets one from its content (a listing page's `date`, the
items' `submittedOnDailyAt`) or, last, from when it was captured.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import PurePath
from urllib.parse import parse_qs, urlsplit

_ISO_DAY = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


def is_url(origin: str) -> bool:
    """Whether `origin` is a URL (else it is a file path)."""
    return origin.startswith(("http://", "https://"))


def iso_day(text: str) -> date | None:
    """The first valid YYYY-MM-DD in `text`, or None."""
    for match in _ISO_DAY.finditer(text):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None


def day_in_origin(origin: str) -> date | None:
    """The day a URL (`date=`, or the last part of its path) or a file name names."""
    if is_url(origin):
        parts = urlsplit(origin)
        for value in parse_qs(parts.query).get("date", []):
            if (day := iso_day(value)) is not None:
                return day
        return iso_day(parts.path.rstrip("/").rsplit("/", 1)[-1])
    return iso_day(PurePath(origin).name)


def midnight(day: date) -> datetime:
    """00:00 UTC of `day`: the time a document's papers are first seen on that day."""
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)
