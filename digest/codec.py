"""The one place that turns `Paper`, `Profile` and their keywords into rows and JSON and back.

    paper_row / paper_from_row        the store's `papers` table (PAPER_COLUMNS, in order)
    paper_to_json / paper_from_json   JSON-ready dicts (frozen digests, caches, scripts)
    paper_public_json                 the documented shape of `digest papers --json`
    paper_fingerprint                 a hash of everything a page may show of a paper
    keywords_to_json / _from_json     a profile's keywords as stored (parsed, never again)

A whole digest as JSON, and the compact form a claim stores, are `digest.frozen`'s (built
on these).

Field lists are derived from the dataclasses, so a field added to `Paper` reaches every
form here at once. Readers are lenient about fields a newer version added (a JSON
object from before a field existed still reads), strict about the ones that must be
there. Times are stored as ISO 8601 in UTC, so text order in SQL is time order.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any

from digest.model import Keyword, Paper, Profile

#: Paper fields that are not columns of `papers`: sources live in their own table, and a
#: revision is parser output only.
_NOT_COLUMNS = ("sources", "revision")
#: The columns of the `papers` table that hold a Paper, in `paper_row` order.
PAPER_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Paper) if f.name not in _NOT_COLUMNS)
_DATES = {"published"}
_TIMES = {"first_seen", "last_seen"}
#: Tuples of strings: a JSON list in a row and in JSON.
_LISTS = {"authors", "keywords"}
#: `digest papers --json`: exactly these keys (documented in the README).
PUBLIC_PAPER_KEYS = (
    "id",
    "title",
    "abstract",
    "published",
    "upvotes",
    "authors_count",
    "organization",
    "sources",
    "first_seen",
    "arxiv_id",
    "url",
    "authors",
    "summary",
    "keywords",
    "pdf_url",
    "code_url",
    "code_stars",
    "project_url",
    "thumbnail_url",
    "comments",
    "comment",
    "version",
    "doi",
)


def time_text(moment: datetime) -> str:
    """A stored time: UTC (when aware), ISO 8601."""
    return moment.astimezone(UTC).isoformat() if moment.tzinfo else moment.isoformat()


def _out(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return time_text(value)
    if name in _DATES:
        return value.isoformat()
    if name in _LISTS:
        return list(value)
    return value


def _in(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return datetime.fromisoformat(value)
    if name in _DATES:
        return date.fromisoformat(value)
    if name in _LISTS:
        return tuple(str(v) for v in value)
    return value


def _cell(name: str, value: Any) -> Any:
    """A value as a `papers` column holds it: lists as JSON text."""
    out = _out(name, value)
    return json.dumps(out, ensure_ascii=False) if name in _LISTS else out


# -- papers ------------------------------------------------------------------------------


def paper_row(paper: Paper) -> tuple[Any, ...]:
    """The paper's values for PAPER_COLUMNS, in order."""
    return tuple(_cell(name, getattr(paper, name)) for name in PAPER_COLUMNS)


def _list_cell(value: str) -> tuple[str, ...] | None:
    if value == "[]":
        return ()
    got = json.loads(value)
    return None if got is None else tuple(map(str, got))


#: Each column with what turns its cell into the field (None: the cell is the value): `_in`
#: after JSON for lists, decided once per column, not per cell (a year's archive reads
#: 730,000 rows, and the per-cell tests were half of reading them).
_FROM_CELL: tuple[tuple[str, Callable[[Any], Any] | None], ...] = tuple(
    (
        name,
        datetime.fromisoformat
        if name in _TIMES
        else date.fromisoformat
        if name in _DATES
        else _list_cell
        if name in _LISTS
        else None,
    )
    for name in PAPER_COLUMNS
)


#: Paper's fields, in order, are PAPER_COLUMNS with `sources` put back before
#: `first_seen` and `revision` (parser output only) after them: `paper_from_cells` builds
#: a Paper positionally, twice as fast as by keywords for 25 fields.
_SOURCES_AT = PAPER_COLUMNS.index("first_seen")
assert tuple(f.name for f in fields(Paper)) == (
    *PAPER_COLUMNS[:_SOURCES_AT],
    "sources",
    *PAPER_COLUMNS[_SOURCES_AT:],
    "revision",
)
#: (position, converter) of the columns whose cell is not already the field's value.
_CONVERTED = tuple((i, convert) for i, (_, convert) in enumerate(_FROM_CELL) if convert)


def paper_from_cells(cells: Iterable[Any], sources: tuple[str, ...] = ()) -> Paper:
    """A stored paper from its cells in PAPER_COLUMNS order (a row that selected exactly
    those columns): what `paper_from_row` makes, without a lookup by name per column (a
    year's archive reads 730,000 rows)."""
    values = list(cells)
    for i, convert in _CONVERTED:
        cell = values[i]
        if cell is not None:
            values[i] = convert(cell)
    values.insert(_SOURCES_AT, sources)
    return Paper(*values)


_LIST_AT = tuple(i for i, name in enumerate(PAPER_COLUMNS) if name in _LISTS)
_OTHERS_CONVERTED = tuple((i, c) for i, c in _CONVERTED if i not in _LIST_AT)


def papers_from_cells(
    rows: Sequence[Sequence[Any]], sources: Mapping[str, Sequence[str]]
) -> list[Paper]:
    """`paper_from_cells` of many rows (id first; `sources` by id), built a column at a
    time: each list column's JSON cells parsed in one `json.loads` (a month of the
    archive is 120,000 of them, a call each took a third of reading the rows), each
    other converted column's distinct cells converted once (a day's papers share their
    `first_seen` and most of their dates), and the papers' fields set a column at a
    time, with no per-row list work."""
    if not rows:
        return []
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, convert in _OTHERS_CONVERTED:
        cells = columns[i]
        made = {c: convert(c) for c in set(cells) if c is not None}
        made_get = made.get
        columns[i] = [made_get(c) for c in cells]
    for i in _LIST_AT:
        columns[i] = _list_cells(list(columns[i]))
    found = sources.get
    columns.insert(_SOURCES_AT, [tuple(found(pid, ())) for pid in columns[0]])
    columns.append([False] * len(rows))  # `revision`: parser output only
    # What Paper's (frozen) __init__ does, a field at a time for all the papers: the
    # loops run in C (`map`), not a call of __init__ and 26 assignments a paper.
    papers = list(map(_NEW, itertools.repeat(Paper, len(rows))))
    for name, column in zip(_PAPER_FIELDS, columns, strict=True):
        collections.deque(map(_SET, papers, itertools.repeat(name), column), maxlen=0)
    return papers


#: `papers_from_cells` sets Paper's fields as its generated __init__ would: it has no
#: __post_init__ (nor validation) to run.
_PAPER_FIELDS = tuple(f.name for f in fields(Paper))
_NEW, _SET = object.__new__, object.__setattr__
assert not hasattr(Paper, "__post_init__")


def _list_cells(cells: list[str | None]) -> list[tuple[str, ...] | None]:
    """`_list_cell` of each cell (None stays None), the non-empty ones parsed at once."""
    out: list[tuple[str, ...] | None] = [() if c == "[]" else None for c in cells]
    full = [k for k, c in enumerate(cells) if c is not None and c != "[]"]
    if not full:
        return out
    try:
        parsed = json.loads("[" + ",".join([cells[k] for k in full]) + "]")  # type: ignore[misc]
    except ValueError:
        parsed = None
    if not isinstance(parsed, list) or len(parsed) != len(full):
        # A cell that is not one JSON value: each alone, as `_list_cell` (which raises).
        parsed = [json.loads(cells[k]) for k in full]  # type: ignore[arg-type]
    for k, got in zip(full, parsed, strict=True):
        out[k] = None if got is None else tuple(map(str, got))
    return out


def paper_from_row(row: Mapping[str, Any], sources: tuple[str, ...] = ()) -> Paper:
    """A stored paper (a row with PAPER_COLUMNS, e.g. sqlite3.Row) back as a Paper."""
    return paper_from_cells([row[name] for name in PAPER_COLUMNS], sources)


@functools.lru_cache(maxsize=8192)
def paper_to_json(paper: Paper) -> dict[str, Any]:
    """Every stored field and the sources, JSON-ready; cached (digests repeat papers).

    Callers must not mutate the dict they get.
    """
    out = {name: _out(name, getattr(paper, name)) for name in PAPER_COLUMNS}
    out["sources"] = list(paper.sources)
    return out


def paper_from_json(raw: Mapping[str, Any]) -> Paper:
    """The inverse of `paper_to_json`; fields a newer version added may be missing."""
    defaults = {f.name: f.default for f in fields(Paper)}
    values = {
        name: _in(name, raw[name]) if name in raw else defaults[name] for name in PAPER_COLUMNS
    }
    return _thawed_paper(tuple(values.items()), tuple(raw.get("sources", ())))


@functools.lru_cache(maxsize=8192)
def _thawed_paper(values: tuple[tuple[str, Any], ...], sources: tuple[str, ...]) -> Paper:
    """One Paper object per distinct record: many frozen digests of a day share papers."""
    return Paper(**dict(values), sources=sources)


def paper_public_json(paper: Paper) -> dict[str, Any]:
    """The stable JSON shape of `digest papers --json` (PUBLIC_PAPER_KEYS)."""
    full = paper_to_json(paper)
    return {key: full[key] for key in PUBLIC_PAPER_KEYS}


def paper_fingerprint(paper: Paper) -> str:
    """A hash of everything a page may show of a paper (not `last_seen`, never shown)."""
    shown = {k: v for k, v in paper_to_json(paper).items() if k != "last_seen"}
    text = json.dumps(shown, ensure_ascii=False, sort_keys=True)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


# -- profiles ----------------------------------------------------------------------------


def keyword_to_json(keyword: Keyword) -> dict[str, Any]:
    return {"text": keyword.text, "phrase": keyword.phrase, "weight": keyword.weight}


def keywords_to_json(keywords: tuple[Keyword, ...]) -> str:
    """Parsed keywords as stored: a JSON list of {text, phrase, weight}."""
    return json.dumps([keyword_to_json(k) for k in keywords], ensure_ascii=False)


@functools.lru_cache(maxsize=131_072)  # a send reads every list twice: parse it once
def keywords_from_json(text: str) -> tuple[Keyword, ...]:
    """The inverse of `keywords_to_json`."""
    return tuple(_keyword(k) for k in json.loads(text))


def _keyword(raw: Mapping[str, Any]) -> Keyword:
    return Keyword(str(raw["text"]), bool(raw.get("phrase", False)), float(raw.get("weight", 1)))


def profile_to_json(profile: Profile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "keywords": [keyword_to_json(k) for k in profile.keywords],
        "exclude": [keyword_to_json(k) for k in profile.exclude],
        "max_items": profile.max_items,
        "min_score": profile.min_score,
    }


def profile_from_json(raw: Mapping[str, Any]) -> Profile:
    return Profile(
        raw["name"],
        tuple(_keyword(k) for k in raw["keywords"]),
        tuple(_keyword(k) for k in raw["exclude"]),
        raw["max_items"],
        raw["min_score"],
    )
