"""RSS 2.0, Atom and RSS 1.0 (RDF) feeds through feedparser, with arXiv's in mind.

arXiv's listing feeds (`https://rss.arxiv.org/rss/<cat>`, also `/atom/<cat>`) carry one
item per announced paper (`sources.arxiv` has the other shapes arXiv serves):

    <item>
      <title>Token Merging for Multilingual Speech Recognition</title>
      <link>https://arxiv.org/abs/2510.13151</link>
      <description>arXiv:2510.13151v1 Announce Type: new
    Abstract: Leading multilingual ...</description>
      <guid isPermaLink="false">oai:arXiv.org:2510.13151v1</guid>
      <category>cs.CL</category>
      <pubDate>Thu, 16 Oct 2025 00:00:00 -0400</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>     new | cross | replace | replace-cross
      <dc:creator>Dylan Holyoak, Mei Chen</dc:creator>
    </item>

The arXiv id and version come from the guid or the link, the abstract from after
`Abstract:`, the authors from `dc:creator` (or Atom's `<author>`s), the keywords from the
categories, the PDF from a `pdf` link or the arXiv id; an API answer adds the DOI and the
authors' comment. A title the feed types as HTML is read as text.

A *replaced* paper (a new version of an old one) is still yielded, so the store can
update its record, but it is marked `revision=True`, so the store never adds it as a
new paper, and `published` is None (the feed's date is the day of the new version, not of
the paper). `entries()` gives the announce type itself for callers that want it.

Entries that are no paper are skipped with a warning naming the entry's line and number:
the API's error entries, entries without a title, entries with nothing to know them by
(no id, no link). A generic entry's id is a hash of its title and its DOI, link or id,
so two entries that share a title but not a link are two papers.

feedparser never fetches here: bytes go in through a file object, because a `bytes`
argument that happens to name a file would be opened and read by feedparser.
"""

from __future__ import annotations

import calendar
import io
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import feedparser

from digest.errors import SourceError
from digest.model import MAX_AUTHORS, MAX_KEYWORDS, Paper, SourceWarning
from digest.sources import arxiv
from digest.sources.arxiv import ABS_URL, ANNOUNCEMENT, REVISIONS, arxiv_ref
from digest.sources.base import WarnFn
from digest.sources.days import is_url, midnight
from digest.sources.markup import html_text
from digest.text import normalize_space, title_id

__all__ = ["ABS_URL", "REVISIONS", "FeedEntry", "arxiv_ref", "entries", "parse"]

_SAX_WHERE = re.compile(r"^<unknown>:\d+:\d+:\s*")
_AUTHOR_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
_ENTRY_TAG = re.compile(rb"<(?:[\w.\-]+:)?(?:entry|item)[\s>/]")
_DOI = re.compile(r"\b(10\.\d{4,9}/\S+)", re.IGNORECASE)
_HAS_WORD = re.compile(r"\w")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One feed entry: the `Paper` and what arXiv says about this announcement."""

    paper: Paper
    #: `new`, `cross`, `replace`, `replace-cross`; "" for feeds that do not say.
    announce_type: str = ""
    version: int | None = None  #: arXiv version (`v2` -> 2) when the feed gives one

    @property
    def is_revision(self) -> bool:
        """A new version of an older paper: worth updating, not worth announcing again."""
        return self.announce_type in REVISIONS


def parse(
    data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[Paper]:
    """Papers of one RSS/Atom document (the `Parser` protocol); replacements included."""
    for entry in entries(data, origin=origin, source=source, captured=captured, warn=warn):
        yield entry.paper


def entries(
    data: bytes,
    *,
    origin: str,
    source: str,
    captured: date,
    warn: WarnFn,
    response_headers: Mapping[str, str] | None = None,
) -> Iterator[FeedEntry]:
    """Every usable entry; SourceError when the document is no feed at all.

    `response_headers` (lower-case names, as `FetchResult.headers`) let feedparser use
    the HTTP charset and base URL. A feed that is not well-formed but still gave entries
    ("bozo") is kept with one warning; one that gave none is a SourceError.
    """
    what = "response" if is_url(origin) else "file"
    if not data.strip():
        raise SourceError(f"{origin}: empty {what}, expected an RSS/Atom feed")
    try:
        result = feedparser.parse(
            io.BytesIO(data),
            response_headers=dict(response_headers or {}),
            sanitize_html=False,  # the sanitizer eats arXiv math such as `x<y`; text only
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser can raise on hostile input (e.g. &#xD800;)
        raise SourceError(
            f"{origin}: the feed cannot be parsed ({type(exc).__name__}: {exc}); "
            "is it an RSS/Atom feed?"
        ) from None
    raw_entries = list(result.get("entries", []))
    if result.get("bozo"):
        problem = _bozo_problem(result.get("bozo_exception"))
        if not raw_entries:
            check = "check the URL" if is_url(origin) else "is the file an RSS/Atom feed?"
            raise SourceError(f"{origin}: not a readable RSS/Atom feed ({problem}); {check}")
        warn(
            SourceWarning(
                origin,
                _bozo_line(result.get("bozo_exception")),
                f"feed is not well-formed ({problem}); kept the {len(raw_entries)} entries "
                "the lenient parser could read",
            )
        )
    elif not result.get("version") and not raw_entries:
        raise SourceError(f"{origin}: not an RSS/Atom feed (no channel or feed element)")
    feed = result.get("feed", {})
    seen_at = midnight(_feed_day(feed, captured))
    lines = _entry_lines(data, len(raw_entries))
    count = 0
    for position, raw in enumerate(raw_entries, 1):
        where = _Where(origin, lines[position - 1], position)
        entry = _entry(raw, where, source=source, seen_at=seen_at, warn=warn)
        if entry is not None:
            count += 1
            yield entry
    if not raw_entries:
        warn(SourceWarning(origin, 0, _no_entries(feed, origin)))
    elif count == 0:
        warn(SourceWarning(origin, 0, f"no usable entries in {_feed_name(feed)}"))


def _feed_name(feed: Mapping[str, object]) -> str:
    title = normalize_space(html_text(_text(feed.get("title"))))
    return f"the feed {title[:80]!r}" if title else "the feed"


def _no_entries(feed: Mapping[str, object], origin: str) -> str:
    """Why a feed may be empty: arXiv's listing feeds are, at weekends and on holidays."""
    name = _feed_name(feed)
    if arxiv.is_listing_feed(feed, origin):
        return f"{name} has no entries (arXiv announces none at weekends and on holidays)"
    return f"{name} has no entries"


@dataclass(frozen=True, slots=True)
class _Where:
    """Where an entry is, for warnings: the file or URL, the line of its tag, its number."""

    origin: str
    line: int
    position: int

    def warning(self, text: str, *, skipped: bool = False) -> SourceWarning:
        return SourceWarning(self.origin, self.line, f"entry {self.position}{text}", skipped)


def _entry_lines(data: bytes, count: int) -> list[int]:
    """The line of each entry's tag; 0s when the tags do not match the entries one to one."""
    starts = [m.start() for m in _ENTRY_TAG.finditer(data)]
    if len(starts) != count:
        return [0] * count
    lines, line, at = [], 1, 0
    for start in starts:
        line += data.count(b"\n", at, start)
        at = start
        lines.append(line)
    return lines


def _entry(
    raw: Mapping[str, object],
    where: _Where,
    *,
    source: str,
    seen_at: datetime,
    warn: WarnFn,
) -> FeedEntry | None:
    title = _title(raw)
    entry_id = _text(raw.get("id")).strip()
    link = _text(raw.get("link")).strip()
    if not title:
        warn(where.warning(": no title; skipped", skipped=True))
        return None
    label = f" ({title[:50]!r})"
    if arxiv.is_error_entry(entry_id or link, title):
        reason = normalize_space(_text(raw.get("summary"))) or "no reason given"
        message = f": the arXiv API answered with an error ({reason[:120]}); skipped"
        warn(where.warning(message, skipped=True))
        return None
    title, old_ref, updated = arxiv.split_title(title)
    summary = _text(raw.get("summary"))
    prefix = ANNOUNCEMENT.match(summary)
    announce = _text(raw.get("arxiv_announce_type")).strip().lower()
    if updated:
        announce = announce or "replace"
    if prefix:
        announce = announce or prefix["type"].lower()
        abstract = summary[prefix.end() :]
    else:
        abstract = summary.split("Abstract:", 1)[1] if "Abstract:" in summary else summary
        if not _is_plain_text(raw):  # (the listing feeds' text is plain: `$T<N$` stays)
            abstract = html_text(abstract)
    abstract = normalize_space(abstract)
    refs = [
        found
        for candidate in (entry_id, link, prefix["id"] if prefix else old_ref)
        if candidate and (found := arxiv_ref(candidate))
    ]
    ref = refs[0] if refs else None
    if ref is not None:  # the version may be in another of them (`[cs.CL]` titles)
        ref = (ref[0], next((v for i, v in refs if i == ref[0] and v), None))
    doi = _doi(raw)
    if ref is None and not (entry_id or link or doi):
        warn(where.warning(f"{label}: no id, link or DOI to know it by; skipped", skipped=True))
        return None
    if ref is None and announce:
        warn(where.warning(f"{label}: no arXiv id in guid or link; kept"))
    if not abstract:
        warn(where.warning(f"{label}: no abstract"))
    revision = announce in REVISIONS
    web_link = link if link.startswith(("http://", "https://")) else None
    names = _authors(raw)
    paper = Paper(
        id=ref[0] if ref else title_id(title, doi or link or entry_id),
        title=title,
        abstract=abstract,
        published=None if revision else _entry_day(raw),
        authors_count=len(names) or None,
        arxiv_id=ref[0] if ref else None,
        url=ABS_URL + ref[0] if ref else web_link,
        sources=(source,),
        first_seen=seen_at,
        last_seen=seen_at,
        revision=revision,
        authors=tuple(names[:MAX_AUTHORS]),
        keywords=_keywords(raw),
        pdf_url=_pdf_link(raw) or (arxiv.pdf_url(ref[0]) if ref else None),
        comment=normalize_space(_text(raw.get("arxiv_comment"))),
        version=ref[1] if ref else None,
        doi=doi,
    )
    return FeedEntry(paper=paper, announce_type=announce, version=paper.version)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _title(raw: Mapping[str, object]) -> str:
    """The title as text (an HTML-typed one too); "" when nothing readable is left."""
    title = _text(raw.get("title"))
    detail = raw.get("title_detail")
    if isinstance(detail, Mapping) and "html" in _text(detail.get("type")):
        title = html_text(title)
    title = normalize_space(title)
    return title if _HAS_WORD.search(title) else ""


def _is_plain_text(raw: Mapping[str, object]) -> bool:
    detail = raw.get("summary_detail")
    return isinstance(detail, Mapping) and detail.get("type") == "text/plain"


def _authors(raw: Mapping[str, object]) -> list[str]:
    """Atom lists one author per element; RSS `dc:creator` joins them with commas."""
    authors = raw.get("authors")
    names = (
        [a.get("name", "") for a in authors if isinstance(a, Mapping)]
        if isinstance(authors, list)
        else []
    )
    # arXiv's RSS 1.0 feeds link each name: `<a href="...">Mengkang Hu</a>, <a ...`
    names = [normalize_space(html_text(n)) for n in names if isinstance(n, str) and n.strip()]
    if len(names) == 1:
        names = [n for n in _AUTHOR_SPLIT.split(names[0]) if n.strip()]
    return [n for n in names if n]


def _keywords(raw: Mapping[str, object]) -> tuple[str, ...]:
    """The categories: arXiv's primary one first, each once."""
    terms: list[object] = []
    primary = raw.get("arxiv_primary_category")
    if isinstance(primary, Mapping):
        terms.append(primary.get("term"))
    tags = raw.get("tags")
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, Mapping):
            terms.append(tag.get("term") or tag.get("label"))
    found: dict[str, str] = {}
    for term in terms:
        if isinstance(term, str) and (text := normalize_space(term)):
            found.setdefault(text.casefold(), text)
    return tuple(found.values())[:MAX_KEYWORDS]


def _pdf_link(raw: Mapping[str, object]) -> str | None:
    links = raw.get("links")
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, Mapping):
            continue
        href = _text(link.get("href")).strip()
        is_pdf = link.get("type") == "application/pdf" or link.get("title") == "pdf"
        if is_pdf and href.startswith(("http://", "https://")):
            return href
    return None


def _doi(raw: Mapping[str, object]) -> str | None:
    """The DOI an entry names (`arxiv:doi`, `prism:doi`, `dc:identifier`), lower-cased."""
    for key in ("arxiv_doi", "prism_doi", "dc_identifier"):
        match = _DOI.search(_text(raw.get(key)))
        if match:
            return match[1].rstrip(".,;").lower()
    return None


def _entry_day(raw: Mapping[str, object]) -> date | None:
    # Only `published_parsed`: asking feedparser for a missing `updated_parsed` warns.
    parsed = raw.get("published_parsed")
    return _utc_day(parsed) if isinstance(parsed, time.struct_time) else None


def _feed_day(feed: Mapping[str, object], captured: date) -> date:
    """The day the feed was published (arXiv: the announcement day), else `captured`."""
    for key in ("published_parsed", "updated_parsed"):
        parsed = feed.get(key) if key in feed else None
        if isinstance(parsed, time.struct_time) and (day := _utc_day(parsed)) is not None:
            return day
    return captured


def _utc_day(parsed: time.struct_time) -> date | None:
    """The UTC day of a parsed feed time; None for one no calendar holds (year 10000)."""
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC).date()
    except (ValueError, OverflowError, OSError):
        return None


def _bozo_problem(exc: object) -> str:
    text = normalize_space(str(exc)) if exc is not None else ""
    text = _SAX_WHERE.sub("", text)  # "<unknown>:49:0: no element found" -> "no element found"
    return text or (type(exc).__name__ if exc is not None else "unknown problem")


def _bozo_line(exc: object) -> int:
    get_line = getattr(exc, "getLineNumber", None)
    if callable(get_line):
        try:
            line = get_line()
        except Exception:  # a SAX locator that is gone; the line is only a courtesy
            return 0
        return line if isinstance(line, int) and line > 0 else 0
    return 0
