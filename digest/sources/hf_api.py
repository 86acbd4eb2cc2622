"""Hugging Face daily papers JSON: `https://huggingface.co/api/daily_papers?date=YYYY-MM-DD`.

The answer is a list of items, one per paper on that day's page. The paper's own fields
live under `paper`; the item repeats some of them and adds its own (when it was put on
the daily page, comments, the submitter). Responses differ in where optional fields sit
(`organization`, `upvotes`, `githubRepo` ... at the top level in some, under `paper` in
others), so every field is looked up in `paper` first and then in the item:

    [{"paper": {"id": "2510.01234", "title": ..., "summary": ...,
                "authors": [{"name": ..., "hidden": false}, ...],
                "publishedAt": "2025-10-14T17:59:01.000Z", "upvotes": 12,
                "ai_summary": ..., "ai_keywords": [...], "githubRepo": ..., "githubStars": 3,
                "projectPage": ..., "organization": {"name": "deepmind", "fullname": "Deepmind"}},
      "publishedAt": "2025-10-16T01:23:45.000Z", "title": ..., "summary": ...,
      "numComments": 2, "submittedBy": {...}}, ...]

The listing page embeds the same items in its HTML (`data-props` of the DailyPapers
component), so `html_listing` hands them to `read_items` as well.

A paper's id is its arXiv id (version dropped); `published` is the arXiv date
(`paper.publishedAt`), as the listing page prints it. The day the page belongs to (the
`date=` of the URL, or `captured`) is the paper's first/last seen time at 00:00 UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources.base import WarnFn
from digest.text import normalize_space, title_id

API_URL = "https://huggingface.co/api/daily_papers"
PAPER_URL = "https://huggingface.co/papers/"

#: New-style (`2401.01234`) and old-style (`hep-th/9901001`) arXiv ids, version optional.
ARXIV_ID = re.compile(
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?"
)


def daily_papers_url(day: date | None = None, *, limit: int | None = None, page: int = 0) -> str:
    """The API URL for one day (today's page when `day` is None), `limit` items per page."""
    params: dict[str, str] = {}
    if day is not None:
        params["date"] = day.isoformat()
    if limit is not None:
        params["limit"] = str(limit)
    if page:
        params["p"] = str(page)
    return f"{API_URL}?{urlencode(params)}" if params else API_URL


def arxiv_id(text: str) -> str | None:
    """`2401.01234v2` -> `2401.01234`; None when `text` is not an arXiv id."""
    match = ARXIV_ID.fullmatch(text.strip())
    return match["id"] if match else None


@dataclass(frozen=True, slots=True)
class DailyItem:
    """One item of the daily papers page: the `Paper`, plus what `Paper` has no field for."""

    paper: Paper
    comments: int | None = None  #: `numComments`
    ai_summary: str = ""  #: Hugging Face's generated one-line summary
    ai_keywords: tuple[str, ...] = ()
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    #: When the paper was put on the daily page (`submittedOnDailyAt` / item `publishedAt`).
    submitted_at: datetime | None = None


def parse(
    data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[Paper]:
    """Papers of one daily papers JSON document (the `Parser` protocol)."""
    for item in items(data, origin=origin, source=source, captured=captured, warn=warn):
        yield item.paper


def items(
    data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[DailyItem]:
    """Every readable item of the document; SourceError only when none can be read.

    Bad items are skipped (or kept, repaired) with a warning that names the item's
    position (`item 3`): JSON carries no line numbers worth reporting.
    """
    value = load_json(data, origin)
    if isinstance(value, dict):
        if "error" in value:
            raise SourceError(f"{origin}: the API answered with an error: {value['error']!r}")
        listed = value.get("dailyPapers")
        if not isinstance(listed, list):
            raise SourceError(
                f"{origin}: a JSON object without a list of papers; "
                "is this the daily_papers API (https://huggingface.co/api/daily_papers)?"
            )
        value = listed
    if not isinstance(value, list):
        raise SourceError(f"{origin}: JSON {type(value).__name__}, not a list of papers")
    day = page_day(origin, captured)
    count = 0
    for item in read_items(value, origin=origin, source=source, day=day, warn=warn):
        count += 1
        yield item
    if count == 0:
        warn(SourceWarning(origin, 0, "no papers on this page (no list for that day yet?)"))


def load_json(data: bytes, origin: str) -> object:
    """The decoded JSON value, or a SourceError saying where the document is broken."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{origin}: not UTF-8 (byte 0x{data[exc.start]:02x}); not JSON") from None
    if not text.strip():
        raise SourceError(f"{origin}: empty response, expected JSON")
    try:
        return json.loads(text)
    except RecursionError:
        raise SourceError(f"{origin}: JSON nested too deeply to be a daily papers answer") from None
    except json.JSONDecodeError as exc:  # (a ValueError: caught before the plain ones)
        head = normalize_space(text[:60])
        raise SourceError(
            f"{origin}:{exc.lineno}: not JSON ({exc.msg} at column {exc.colno}); "
            f"the document starts {head!r} - an error page instead of the API answer?"
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python reads (4300 digits)
        raise SourceError(f"{origin}: not a daily papers answer ({exc})") from None


def page_day(origin: str, captured: date) -> date:
    """The day a page lists: the URL's `date=` when it has one, else the capture day."""
    values = parse_qs(urlsplit(origin).query).get("date", [])
    if values:
        try:
            return date.fromisoformat(values[0])
        except ValueError:
            pass
    return captured


def read_items(
    value: list[object], *, origin: str, source: str, day: date, warn: WarnFn
) -> Iterator[DailyItem]:
    """Turn decoded items into `DailyItem`s, warning about (and skipping) unusable ones."""
    seen_at = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    for position, raw in enumerate(value, 1):
        if not isinstance(raw, dict):
            warn(
                SourceWarning(
                    origin,
                    0,
                    f"item {position}: {type(raw).__name__}, not an object; skipped",
                    skipped=True,
                )
            )
            continue
        item = _item(raw, position, origin=origin, source=source, seen_at=seen_at, warn=warn)
        if item is not None:
            yield item


class _Fields:
    """Looks a field up in `paper` first, then in the item; checks its type."""

    def __init__(self, raw: Mapping[str, object], where: str, origin: str, warn: WarnFn) -> None:
        inner = raw.get("paper")
        self._layers = [inner, raw] if isinstance(inner, dict) else [raw]
        self._where = where
        self._origin = origin
        self._warn = warn

    def get(self, key: str) -> object:
        for layer in self._layers:
            value = layer.get(key)
            if value is not None:
                return value
        return None

    def text(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return normalize_space(value)
        self._bad(key, value)
        return ""

    def count(self, key: str) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self._bad(key, value)
        return None

    def url(self, key: str) -> str | None:
        value = self.text(key)
        return value if value.startswith(("http://", "https://")) else None

    def _bad(self, key: str, value: object) -> None:
        self._warn(SourceWarning(self._origin, 0, f"{self._where}: bad {key} {value!r}; ignored"))


def _item(
    raw: Mapping[str, object],
    position: int,
    *,
    origin: str,
    source: str,
    seen_at: datetime,
    warn: WarnFn,
) -> DailyItem | None:
    inner = raw.get("paper")
    raw_id = inner.get("id") if isinstance(inner, dict) else None
    if raw_id is None:
        raw_id = raw.get("id")
    label = f"item {position}" + (f" ({raw_id})" if isinstance(raw_id, str) and raw_id else "")
    fields = _Fields(raw, label, origin, warn)
    title = fields.text("title")
    if not title:
        warn(SourceWarning(origin, 0, f"{label}: no title; skipped", skipped=True))
        return None
    found = arxiv_id(raw_id) if isinstance(raw_id, str) else None
    if found is None:
        warn(SourceWarning(origin, 0, f"{label}: no arXiv id; kept under a title id"))
    abstract = fields.text("summary")
    if not abstract:
        warn(SourceWarning(origin, 0, f"{label}: {title[:60]!r} has no abstract"))
    authors = fields.get("authors")
    if authors is not None and not isinstance(authors, list):
        fields._bad("authors", authors)
        authors = None
    paper = Paper(
        id=found or title_id(title),
        title=title,
        abstract=abstract,
        published=_day(fields.get("publishedAt"), label, origin, warn),
        upvotes=fields.count("upvotes") or 0,
        authors_count=len(authors) if authors else None,
        organization=_organization(fields.get("organization")),
        arxiv_id=found,
        url=PAPER_URL + found if found else None,
        sources=(source,),
        first_seen=seen_at,
        last_seen=seen_at,
    )
    keywords = fields.get("ai_keywords")
    return DailyItem(
        paper=paper,
        comments=fields.count("numComments"),
        ai_summary=fields.text("ai_summary"),
        ai_keywords=tuple(normalize_space(k) for k in keywords if isinstance(k, str))
        if isinstance(keywords, list)
        else (),
        github_repo=fields.url("githubRepo"),
        github_stars=fields.count("githubStars"),
        project_page=fields.url("projectPage"),
        submitted_at=_time(fields.get("submittedOnDailyAt") or raw.get("publishedAt")),
    )


def _organization(value: object) -> str | None:
    """`{"name": "deepmind", "fullname": "Deepmind"}` -> `Deepmind` (the display name)."""
    if isinstance(value, dict):
        for key in ("fullname", "name"):
            name = value.get(key)
            if isinstance(name, str) and name.strip():
                return normalize_space(name)
    if isinstance(value, str) and value.strip():
        return normalize_space(value)
    return None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(value: object, label: str, origin: str, warn: WarnFn) -> date | None:
    if value is None:
        return None
    moment = _time(value)
    if moment is None:
        warn(SourceWarning(origin, 0, f"{label}: bad publishedAt {value!r}; ignored"))
        return None
    try:
        return moment.astimezone(UTC).date()
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        warn(SourceWarning(origin, 0, f"{label}: publishedAt {value!r} out of range; ignored"))
        return None
