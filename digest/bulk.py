"""Bulk subscriber files: JSON Lines or CSV in, checked rows out; and the same format back.

    read_rows(data, origin) -> ImportFile   every row checked in one pass: an ImportRow
                                            or a BadRow (`file:line: what is wrong`)
    detect_format(text)                     "jsonl" when the first non-blank character
                                            is `{`, else "csv" (by content, not by name)
    export_lines(subscribers, fmt)          one row per profile, the same fields, so
                                            importing an export changes nothing

A row has the fields of FIELDS. `email` is required (normalised and checked by
`subscriptions.normalize_email`); `keywords` and `exclude` are a list of strings in JSON
and a comma-separated string in CSV (either in JSON), parsed by `rank.make_profile`, the
one profile parser; `profile` names the profile (default "papers"); `timezone`, `send_at`
and `frequency` are checked by `subscriptions.check_settings`, and empty or absent means
"not given" (defaults for a new reader, unchanged for a known one). A CSV file starts with
a header row naming its columns in any order (any case); an unknown column or key is an
error, so a misspelt `time_zone` never goes missing silently.

Nothing here opens a file or the store: the caller reads the bytes and writes the rows.
Profiles repeat in a list (thousands of readers share a few topics), so each distinct
(profile, keywords, exclude) is parsed once per file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from digest.errors import DigestError, SourceError, SubscriptionError
from digest.model import Profile, Subscriber
from digest.rank import make_profile, profile_text
from digest.subscriptions import DEFAULT_PROFILE, check_settings, normalize_email

#: The fields of a row, in the order an export writes them.
FIELDS = ("email", "profile", "keywords", "exclude", "timezone", "send_at", "frequency")
FORMATS = ("jsonl", "csv")
_SETTINGS = ("timezone", "send_at", "frequency")
#: Control characters (C0, DEL, C1) never belong in a one-line field: `a@b.org\nBcc: x@y`.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: In keywords a tab or a line break is only a separator (`parse_keywords` splits on it).
_KEYWORD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: A lone surrogate (JSON "\ud800") is no character: it cannot be stored as UTF-8.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NOT_BLANK = re.compile(r"\S")
_PROGRESS_EVERY = 2000

#: progress(done, total, label): called now and then while rows are checked.
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One good row: a normalised address, its parsed profile and the settings it gives."""

    line: int  #: 1-based line where the row starts
    email: str  #: normalised (`subscriptions.normalize_email`)
    profile: Profile
    #: None when the row leaves it out: a new reader gets the default, a known one keeps it.
    timezone: str | None = None
    send_at: str | None = None
    frequency: str | None = None


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be imported: where it starts and, in one line, what is wrong."""

    line: int
    message: str


@dataclass(frozen=True, slots=True)
class ImportFile:
    """A file read and checked: its good rows and its bad ones, each in file order."""

    origin: str  #: the file as named on the command line (for messages)
    format: str  #: "jsonl" | "csv"
    rows: tuple[ImportRow, ...]
    bad: tuple[BadRow, ...]

    def where(self, bad: BadRow) -> str:
        """`file:line: what is wrong`."""
        return f"{self.origin}:{bad.line}: {bad.message}"


def read_rows(data: bytes, origin: str, *, progress: ProgressFn | None = None) -> ImportFile:
    """Check every row of a JSON Lines or CSV file (`data`, named `origin` in messages).

    A row that is wrong becomes a BadRow; a file that cannot be read as rows at all (not
    UTF-8, a JSON array, a CSV header without `email`, broken CSV) raises SourceError
    naming the file and line.
    """
    text = decode(data, origin)
    first = _NOT_BLANK.search(text)
    if first is not None and first.group() == "[":
        line = text.count("\n", 0, first.start()) + 1
        raise SourceError(
            f"{origin}:{line}: a JSON array; write JSON Lines instead (one object a line)"
        )
    fmt = detect_format(text)
    records = _jsonl_records(text) if fmt == "jsonl" else _csv_records(text, origin)
    total = text.count("\n") + 1
    check = _RowChecker()
    rows: list[ImportRow] = []
    bad: list[BadRow] = []
    for count, (line, record) in enumerate(records, 1):
        if isinstance(record, str):
            bad.append(BadRow(line, record))
        else:
            try:
                rows.append(check(line, record))
            except DigestError as exc:
                bad.append(BadRow(line, " ".join(str(exc).split())))
        if progress is not None and count % _PROGRESS_EVERY == 0:
            progress(line, total, "checking")
    return ImportFile(origin, fmt, tuple(rows), tuple(bad))


def decode(data: bytes, origin: str) -> str:
    """The text of a UTF-8 file (a byte-order mark, as spreadsheets write it, is dropped)."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        line = data.count(b"\n", 0, at) + 1
        raise SourceError(
            f"{origin}:{line}: not UTF-8 text (byte 0x{data[at]:02x}); save it as UTF-8"
        ) from None


def detect_format(text: str) -> str:
    """ "jsonl" when the first non-blank character is `{`, else "csv"."""
    first = _NOT_BLANK.search(text)
    return "jsonl" if first is not None and first.group() == "{" else "csv"


# -- reading records: (line, {field: value}) or (line, "what is wrong") -------------------

Record = tuple[int, Mapping[str, object] | str]


def _jsonl_records(text: str) -> Iterator[Record]:
    # Only "\n" ends a line: str.splitlines would also split at U+2028 inside a string.
    for line, body in enumerate(text.split("\n"), 1):
        if not body.strip():
            continue
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            yield line, f"not valid JSON: {exc.msg} (column {exc.colno})"
            continue
        except ValueError:  # Python refuses integers of more than 4300 digits
            yield line, "not valid JSON: a number is too long"
            continue
        except RecursionError:
            yield line, "not valid JSON: nested too deeply"
            continue
        if not isinstance(value, dict):
            yield (
                line,
                (
                    f"not a JSON object but {_json_kind(value)}; write one object a line, "
                    'like {"email": "ada@example.org", "keywords": ["LoRA"]}'
                ),
            )
            continue
        unknown = [key for key in value if key not in FIELDS]
        if unknown:
            yield line, f"unknown field {unknown[0]!r}; the fields are {', '.join(FIELDS)}"
            continue
        yield line, value


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _csv_records(text: str, origin: str) -> Iterator[Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str | None] | None = None
    end = 0  # the line the previous record ended on
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _csv_header(cells, origin, start)
                continue
            extra = cells[len(header) :]
            if any(cell.strip() for cell in extra):
                yield start, f"{len(cells)} values, but the header names {len(header)} columns"
                continue
            yield (
                start,
                {name: cell for name, cell in zip(header, cells, strict=False) if name is not None},
            )
    except csv.Error as exc:
        raise SourceError(f"{origin}:{reader.line_num}: not readable as CSV ({exc})") from None


def _csv_header(cells: list[str], origin: str, line: int) -> list[str | None]:
    """Column names (None for an unnamed column, which is ignored)."""
    names = [cell.strip().lower() or None for cell in cells]
    if "email" not in names:
        found = ",".join(cells)
        found = found if len(found) <= 60 else found[:57] + "..."
        raise SourceError(
            f"{origin}:{line}: no email column; the first line must name the columns "
            f"({', '.join(FIELDS)}), and it is {found!r}"
        )
    for name in names:
        if name is not None and name not in FIELDS:
            raise SourceError(
                f"{origin}:{line}: unknown column {name!r}; the columns are {', '.join(FIELDS)}"
            )
        if name is not None and names.count(name) > 1:
            raise SourceError(f"{origin}:{line}: column {name!r} appears twice")
    return names


# -- checking one record ------------------------------------------------------------------


class _RowChecker:
    """Checks records into ImportRows; checks each distinct profile and settings once."""

    def __init__(self) -> None:
        self._profiles: dict[tuple[str, object, object], Profile] = {}
        self._settings: set[tuple[str | None, str | None, str | None]] = set()

    def __call__(self, line: int, record: Mapping[str, object]) -> ImportRow:
        address = _text(record, "email")
        if address is None:
            raise SubscriptionError("email is missing")
        email = normalize_email(address)
        timezone, send_at, frequency = (_text(record, key) for key in _SETTINGS)
        settings = (timezone, send_at, frequency)
        if settings not in self._settings:  # ZoneInfo reads the zone's file every time
            check_settings(timezone, send_at, frequency, labels=_SETTINGS)
            self._settings.add(settings)
        name = _text(record, "profile") or DEFAULT_PROFILE
        key = (name, _keywords(record, "keywords"), _keywords(record, "exclude"))
        profile = self._profiles.get(key)
        if profile is None:
            profile = self._profiles[key] = make_profile(*key)
        return ImportRow(line, email, profile, timezone, send_at, frequency)


def _text(record: Mapping[str, object], key: str) -> str | None:
    """A one-line text field, stripped; None when absent or empty."""
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SubscriptionError(f"{key} must be a string, not {_json_kind(value)}")
    value = value.strip()
    _check_characters(key, value, _CONTROL)
    return value or None


def _keywords(record: Mapping[str, object], key: str) -> str | tuple[str, ...]:
    """Keywords as written: one comma-separated string, or a list (a tuple: hashable)."""
    value = record.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        _check_characters(key, value, _KEYWORD_CONTROL)
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        for v in value:
            _check_characters(key, v, _KEYWORD_CONTROL)
        return tuple(value)
    raise SubscriptionError(f"{key} must be a list of strings or one comma-separated string")


def _check_characters(key: str, value: str, control: re.Pattern[str]) -> None:
    if value.isascii() and value.isprintable():
        return
    bad = control.search(value) or _SURROGATE.search(value)
    if bad is not None:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise SubscriptionError(
            f"{key} {shown!r} contains the control character U+{ord(bad.group()):04X}"
            if control.match(bad.group())
            else f"{key} {shown!r} contains a lone surrogate U+{ord(bad.group()):04X}"
        )


# -- writing: the same format back ----------------------------------------------------------


def export_records(subscribers: Iterable[Subscriber]) -> Iterator[dict[str, Any]]:
    """One record per profile of each subscriber, with the fields of FIELDS.

    A subscriber without a profile has no row (a row needs keywords).
    """
    for sub in subscribers:
        for profile in sub.profiles:
            keywords, exclude = profile_text(profile)
            yield {
                "email": sub.email,
                "profile": profile.name,
                "keywords": keywords,
                "exclude": exclude,
                "timezone": sub.timezone,
                "send_at": sub.send_at,
                "frequency": sub.frequency,
            }


def export_lines(subscribers: Iterable[Subscriber], fmt: str) -> Iterator[str]:
    """The subscribers as JSON Lines or CSV (with a header), line by line ("\\n" each)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if fmt == "jsonl":
        for record in export_records(subscribers):
            yield json.dumps(record, ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(FIELDS)
    for record in export_records(subscribers):
        record["keywords"] = ", ".join(record["keywords"])
        record["exclude"] = ", ".join(record["exclude"])
        yield line(record[name] for name in FIELDS)
