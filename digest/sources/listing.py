"""Hugging Face papers listing pages, as text captures (like seeds/*.txt).

A capture is page chrome (`new`, `Subscribe`, `Daily Papers`, ...), a header date
(`Oct 16`: the capture day), then entries separated by blank lines:

    Title line
    Abstract line
      • 9 authors          or an organisation line (`deepmind Deepmind`)
    ·
    Jul 23 1             date (year optional) and an optional upvote count

The metadata block is optional (one capture has none). A date without a year lies in
the capture year; the capture date is the header day resolved against `captured`.
Malformed entries are reported through `warn` with the file and line and skipped or
kept as far as they make sense (a title without an abstract is kept: it can still be
ranked, and a richer capture of the same paper replaces it later).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources.base import WarnFn
from digest.text import normalize_space, title_id

CHROME = frozenset(
    {
        "new",
        "get trending papers in your email inbox!",
        "subscribe",
        "daily papers",
        "byak and the research community",
        "papers",
        "trending",
    }
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
DATE_LINE = re.compile(
    r"^(?P<mon>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})(?:,\s*(?P<year>\d{4}))?(?:\s+(?P<up>\d+))?$"
)
AUTHORS_LINE = re.compile(r"^[•·*\-]?\s*(?P<n>\d[\d,]*)\s+authors?$", re.IGNORECASE)
_DOT = "·"
_LINE_END = re.compile(r"\r\n|\r|\n")
#: Counts above this are not counts (and would not fit SQLite's integers).
_MAX_COUNT = 10**9
_SENTENCE_END = re.compile(r"[.!?)\]]$")


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str


def parse(
    data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[Paper]:
    """Parse one capture. Raises nothing for bad entries; `warn` hears about each one.

    `captured` is the date the capture was taken (or a date after it in the same year):
    the page header day is resolved against it, and so are dates without a year.
    """
    text = decode_utf8(data, origin)
    # Only CR and LF end a line: str.splitlines would also split at U+2028, form feeds
    # and other characters that can sit inside an abstract.
    lines = [_Line(i, s.strip()) for i, s in enumerate(_LINE_END.split(text), 1) if s.strip()]
    pos = 0
    capture_day = captured
    # Page chrome and the header date come before the first entry.
    while pos < len(lines):
        line = lines[pos]
        if line.text.casefold() in CHROME:
            pos += 1
            continue
        header = DATE_LINE.match(line.text)
        if header and not header["up"] and not header["year"]:
            capture_day = resolve_header_day(header, captured, origin, line.number, warn)
            pos += 1
            continue
        break
    seen_at = datetime.combine(capture_day, datetime.min.time(), tzinfo=UTC)
    count = 0
    while pos < len(lines):
        paper, pos = _entry(lines, pos, origin, source, capture_day, seen_at, warn)
        if paper is not None:
            count += 1
            yield paper
    if count == 0:
        warn(SourceWarning(origin, 0, "no paper entries found (empty or not a listing capture)"))


def is_json(data: bytes) -> bool:
    """Whether the whole document is JSON (a daily papers answer is no text capture)."""
    try:
        json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return False
    return True


def decode_utf8(data: bytes, origin: str, kind: str = "a text capture") -> str:
    """The text of a captured page; SourceError (with the line) if it is binary or not UTF-8.

    `kind` names what was expected ("a text capture", "an HTML page") in the message.
    """
    if b"\x00" in data[:4096]:
        raise SourceError(f"{origin}: binary data, not {kind}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        noun = kind.split()[-1]
        raise SourceError(
            f"{origin}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            f"save the {noun} as UTF-8"
        ) from None


def resolve_header_day(
    match: re.Match[str], captured: date, origin: str, line: int, warn: WarnFn
) -> date:
    """The latest date with the header's month and day that is not after `captured`."""
    month = _MONTHS.get(match["mon"].lower())
    day = int(match["day"])
    for year in (captured.year, captured.year - 1):
        try:
            candidate = date(year, month or 0, day)
        except ValueError:
            continue
        if candidate <= captured:
            return candidate
    warn(SourceWarning(origin, line, f"header date {match.group(0)!r} is not a valid day"))
    return captured


def _entry(
    lines: list[_Line],
    pos: int,
    origin: str,
    source: str,
    capture_day: date,
    seen_at: datetime,
    warn: WarnFn,
) -> tuple[Paper | None, int]:
    """Read one entry starting at `pos`; return the paper (or None) and the next position."""
    first = lines[pos]
    if _is_meta_start(lines, pos) or first.text == _DOT or DATE_LINE.match(first.text):
        end = _skip_meta(lines, pos)
        warn(SourceWarning(origin, first.number, "metadata without a title; skipped", skipped=True))
        return None, end
    title = first
    pos += 1
    abstract = ""
    if pos < len(lines) and not _is_meta_start(lines, pos) and lines[pos].text != _DOT:
        candidate = lines[pos]
        next_is_abstract = pos + 1 < len(lines) and _looks_like_abstract(lines[pos + 1].text)
        if _looks_like_abstract(candidate.text) or not next_is_abstract:
            abstract = candidate.text
            pos += 1
    if not abstract:
        warn(SourceWarning(origin, title.number, f"entry {title.text[:60]!r} has no abstract"))
    fields: dict[str, object] = {}
    if pos < len(lines) and (_is_meta_start(lines, pos) or lines[pos].text == _DOT):
        fields, pos = _meta(lines, pos, origin, capture_day, warn)
    if pos >= len(lines) and abstract and not _SENTENCE_END.search(abstract):
        warn(
            SourceWarning(
                origin,
                lines[pos - 1].number,
                "capture ends mid-entry: the abstract looks cut off; kept as it is",
            )
        )
    clean_title = normalize_space(title.text)
    return (
        Paper(
            id=title_id(clean_title),
            title=clean_title,
            abstract=normalize_space(abstract),
            sources=(source,),
            first_seen=seen_at,
            last_seen=seen_at,
            **fields,  # type: ignore[arg-type]
        ),
        pos,
    )


def _looks_like_abstract(text: str) -> bool:
    """Abstracts are long prose; titles are short and rarely end a sentence."""
    words = len(text.split())
    return len(text) >= 250 or (words >= 12 and bool(_SENTENCE_END.search(text)))


def _is_meta_start(lines: list[_Line], pos: int) -> bool:
    """An authors line, or any short line followed by the `·` separator."""
    text = lines[pos].text
    if AUTHORS_LINE.match(text):
        return True
    return pos + 1 < len(lines) and lines[pos + 1].text == _DOT and len(text) < 200


def _skip_meta(lines: list[_Line], pos: int) -> int:
    start = pos
    while pos < len(lines) and (
        pos == start or lines[pos].text == _DOT or DATE_LINE.match(lines[pos].text)
    ):
        pos += 1
    return pos


def _meta(
    lines: list[_Line], pos: int, origin: str, capture_day: date, warn: WarnFn
) -> tuple[dict[str, object], int]:
    fields: dict[str, object] = {}
    head = lines[pos]
    if head.text != _DOT:
        authors = AUTHORS_LINE.match(head.text)
        if authors:
            count = int(authors["n"].replace(",", ""))
            if count <= _MAX_COUNT:
                fields["authors_count"] = count
            else:
                warn(SourceWarning(origin, head.number, f"{count} authors is not a count; ignored"))
        else:
            fields["organization"] = organization_name(head.text)
        pos += 1
    if pos < len(lines) and lines[pos].text == _DOT:
        pos += 1
    else:
        warn(SourceWarning(origin, head.number, "metadata block without the '·' separator"))
    if pos < len(lines) and (found := DATE_LINE.match(lines[pos].text)):
        published = _entry_date(found, capture_day)
        if published is None:
            warn(SourceWarning(origin, lines[pos].number, f"bad date {lines[pos].text!r}"))
        else:
            fields["published"] = published
        if found["up"] and int(found["up"]) <= _MAX_COUNT:
            fields["upvotes"] = int(found["up"])
        elif found["up"]:
            warn(SourceWarning(origin, lines[pos].number, "upvote count too large; ignored"))
        pos += 1
    else:
        line = lines[pos].number if pos < len(lines) else head.number
        warn(SourceWarning(origin, line, "metadata block without a date"))
    return fields, pos


def _entry_date(match: re.Match[str], capture_day: date) -> date | None:
    month = _MONTHS.get(match["mon"].lower())
    year = int(match["year"]) if match["year"] else capture_day.year
    try:
        return date(year, month or 0, int(match["day"]))
    except ValueError:
        return None


def organization_name(text: str) -> str:
    """`deepmind Deepmind` -> `Deepmind`: the handle and the display name, keep the name.

    The page prints the organisation's handle and then its name; when the two are the
    same word, the spelling with more capitals is the display form.
    """
    parts = text.split()
    half = len(parts) // 2
    if (
        len(parts) % 2 == 0
        and half
        and [p.casefold() for p in parts[:half]] == [p.casefold() for p in parts[half:]]
    ):
        left, right = " ".join(parts[:half]), " ".join(parts[half:])
        return max((right, left), key=lambda s: sum(c.isupper() for c in s))
    return normalize_space(text)
