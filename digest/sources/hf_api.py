"""Hugging Face daily papers JSON: `https://huggingface.co/api/daily_papers?date=YYYY-MM-DD`.

The answer is a list of items, one per paper on that day's page. The paper's own fields
live under `paper`; the item repeats some of them and adds its own (when it was put on
the daily page, comments, the submitter). Answers from 2024 to 2026 differ in where
optional fields sit (`organization`, `upvotes`, `githubRepo` ... at the top level in
some, under `paper` in others), so every field is looked up in `paper` first and then
in the item. The oldest answers carry a `mediaUrl` (the thumbnail, later `thumbnail`
and `mediaUrls`); newer ones `ai_summary`, `ai_keywords`, `githubRepo`, `githubStars`,
`projectPage`, `organization` objects and `ai_summary_model` (ignored):

    [{"paper": {"id": "2510.01234", "title": ..., "summary": ...,
                "authors": [{"name": ..., "hidden": false}, ...],
                "publishedAt": "2025-10-14T17:59:01.000Z", "upvotes": 12,
                "submittedOnDailyAt": "2025-10-16T01:23:45.000Z",
                "ai_summary": ..., "ai_keywords": [...], "githubRepo": ..., "githubStars": 3,
                "projectPage": ..., "organization": {"name": "deepmind", "fullname": "Deepmind"}},
      "publishedAt": "2025-10-16T01:23:45.000Z", "title": ..., "summary": ...,
      "thumbnail": ..., "numComments": 2, "submittedBy": {...}}, ...]

The listing page embeds the same items in its HTML (`data-props` of the DailyPapers
component), so `html_listing` hands them to `read_items` as well.

A paper's id is its arXiv id (the version is kept apart); `published` is the arXiv date
(`paper.publishedAt`), as the listing page prints it. The day the page lists (the `date=`
of its URL or a YYYY-MM-DD in its file name, else the day most of its items were put on
the daily page, `submittedOnDailyAt`, else `captured`) is the papers' first/last seen
time, at 00:00 UTC.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from urllib.parse import urlencode

from digest.errors import SourceError
from digest.model import MAX_AUTHORS, MAX_KEYWORDS, Paper, SourceWarning
from digest.sources import arxiv
from digest.sources.arxiv import ARXIV_ID, arxiv_id
from digest.sources.base import WarnFn
from digest.sources.days import day_in_origin, is_url, iso_day, midnight
from digest.text import normalize_space, title_id

__all__ = ["ARXIV_ID", "DailyItem", "arxiv_id", "items", "parse", "read_items"]

API_URL = "https://huggingface.co/api/daily_papers"
PAPER_URL = "https://huggingface.co/papers/"


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


@dataclass(frozen=True, slots=True)
class DailyItem:
    """One item of the daily papers page: the `Paper`, and when it was put on the page."""

    paper: Paper
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
    own_day = None
    if isinstance(value, dict):
        if "error" in value:
            raise SourceError(f"{origin}: the API answered with an error: {value['error']!r}")
        listed = value.get("dailyPapers")
        if not isinstance(listed, list):
            raise SourceError(
                f"{origin}: a JSON object without a list of papers; "
                "is this a daily_papers answer (https://huggingface.co/api/daily_papers)?"
            )
        own_day = listing_day(value)  # a listing page's data saved as JSON
        value = listed
    if not isinstance(value, list):
        raise SourceError(f"{origin}: JSON {type(value).__name__}, not a list of papers")
    day = day_in_origin(origin) or own_day
    found = read_items(value, origin=origin, source=source, day=day, captured=captured, warn=warn)
    if not found:
        warn(SourceWarning(origin, 0, "no papers in this answer (no list for that day yet?)"))
    yield from found


def listing_day(props: Mapping[str, object]) -> date | None:
    """The day a listing page's data names: `dateString` (`2025-10-16`) or `date`
    (`2024-08-01T00:00:00.000Z`, a UTC time)."""
    named = props.get("dateString")
    if isinstance(named, str) and (day := iso_day(named[:10])) is not None:
        return day
    moment = _time(props.get("date"))
    return _utc_day(moment) if moment is not None else None


def load_json(data: bytes, origin: str) -> object:
    """The decoded JSON value, or a SourceError saying where the document is broken."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{origin}: not UTF-8 (byte 0x{data[exc.start]:02x}); not JSON") from None
    what = "response" if is_url(origin) else "file"
    if not text.strip():
        raise SourceError(f"{origin}: empty {what}, expected JSON")
    try:
        return json.loads(text)
    except RecursionError:
        raise SourceError(f"{origin}: JSON nested too deeply to be a daily papers answer") from None
    except json.JSONDecodeError as exc:  # (a ValueError: caught before the plain ones)
        head = normalize_space(text[:60])
        instead = "an error page instead of the API answer?" if is_url(origin) else "is it JSON?"
        raise SourceError(
            f"{origin}:{exc.lineno}: not JSON ({exc.msg} at column {exc.colno}); "
            f"the {what} starts {head!r} - {instead}"
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python reads (4300 digits)
        raise SourceError(f"{origin}: not a daily papers answer ({exc})") from None


def page_day(origin: str, captured: date) -> date:
    """The day a page lists: the one its URL or file name names, else the capture day."""
    return day_in_origin(origin) or captured


def read_items(
    value: list[object],
    *,
    origin: str,
    source: str,
    day: date | None,
    captured: date,
    warn: WarnFn,
) -> list[DailyItem]:
    """Turn decoded items into `DailyItem`s, warning about (and skipping) unusable ones.

    They are first seen on `day`; when it is None, on the day most of them were put on
    the daily page, else on `captured`.
    """
    found: list[DailyItem] = []
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
        item = _item(raw, position, origin=origin, source=source, warn=warn)
        if item is not None:
            found.append(item)
    seen_at = midnight(day or _submitted_day(found) or captured)
    return [
        replace(item, paper=replace(item.paper, first_seen=seen_at, last_seen=seen_at))
        for item in found
    ]


def _submitted_day(found: list[DailyItem]) -> date | None:
    """The day most items were put on the daily page (the later of two as common)."""
    days = Counter(d for i in found if i.submitted_at and (d := _utc_day(i.submitted_at)))
    return max(days.items(), key=lambda pair: (pair[1], pair[0]))[0] if days else None


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

    def names(self, key: str) -> list[str]:
        """Strings of a list, or the `name` of its objects (`authors`); others ignored."""
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self._bad(key, value)
            return []
        names = [v.get("name") if isinstance(v, dict) else v for v in value]
        return [normalize_space(n) for n in names if isinstance(n, str) and n.strip()]

    def _bad(self, key: str, value: object) -> None:
        self._warn(SourceWarning(self._origin, 0, f"{self._where}: bad {key} {value!r}; ignored"))


def _item(
    raw: Mapping[str, object], position: int, *, origin: str, source: str, warn: WarnFn
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
    names = fields.names("authors")
    paper = Paper(
        id=found or title_id(title),
        title=title,
        abstract=abstract,
        published=_day(fields.get("publishedAt"), label, origin, warn),
        upvotes=fields.count("upvotes") or 0,
        authors_count=len(authors) if isinstance(authors, list) and authors else None,
        organization=_organization(fields.get("organization")),
        arxiv_id=found,
        url=PAPER_URL + found if found else None,
        sources=(source,),
        authors=tuple(names[:MAX_AUTHORS]),
        summary=fields.text("ai_summary"),
        keywords=tuple(fields.names("ai_keywords")[:MAX_KEYWORDS]),
        pdf_url=arxiv.pdf_url(found) if found else None,
        code_url=fields.url("githubRepo"),
        code_stars=fields.count("githubStars"),
        project_url=fields.url("projectPage"),
        thumbnail_url=fields.url("thumbnail") or fields.url("mediaUrl") or _first_url(fields),
        comments=fields.count("numComments"),
        version=arxiv.id_version(raw_id) if isinstance(raw_id, str) else None,
    )
    submitted = fields.get("submittedOnDailyAt") or raw.get("publishedAt")
    return DailyItem(paper=paper, submitted_at=_time(submitted))


def _first_url(fields: _Fields) -> str | None:
    """The first image of `mediaUrls` (answers from before `thumbnail`)."""
    urls = [u for u in fields.names("mediaUrls") if u.startswith(("http://", "https://"))]
    return urls[0] if urls else None


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
    day = _utc_day(moment)
    if day is None:
        warn(SourceWarning(origin, 0, f"{label}: publishedAt {value!r} out of range; ignored"))
    return day


def _utc_day(moment: datetime) -> date | None:
    try:
        return moment.astimezone(UTC).date()
    except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
        return None
