"""RSS/Atom feeds through feedparser, with arXiv's listing feeds in mind.

arXiv's feeds (`https://rss.arxiv.org/rss/<cat>`, also `/atom/<cat>`) carry one item per
announced paper:

    <item>
      <title>Token Merging for Multilingual Speech Recognition</title>
      <link>https://arxiv.org/abs/2510.13151</link>
      <description>arXiv:2510.13151v1 Announce Type: new
    Abstract: Leading multilingual ...</description>
      <guid isPermaLink="false">oai:arXiv.org:2510.13151v1</guid>
      <pubDate>Thu, 16 Oct 2025 00:00:00 -0400</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>     new | cross | replace | replace-cross
      <dc:creator>Dylan Holyoak, Mei Chen</dc:creator>
    </item>

The arXiv id comes from the guid (version dropped), the abstract from after `Abstract:`,
the author count from `dc:creator`. The feed is empty at weekends and on holidays.

A *replaced* paper (a new version of an old one) is still yielded, so the store can
update its record, but it is marked `revision=True`, so the store never adds it as a
new paper, and `published` is None (the feed's date is the day of the new version, not of
the paper). `entries()` gives the announce type itself for callers that want it.

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
from selectolax.lexbor import LexborHTMLParser

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources.base import WarnFn
from digest.sources.hf_api import ARXIV_ID
from digest.text import normalize_space, title_id

ABS_URL = "https://arxiv.org/abs/"
#: Announce types of a new version of an older paper.
REVISIONS = frozenset({"replace", "replace-cross"})

_ARXIV_PREFIX = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?",
    re.IGNORECASE,
)
_ARXIV_REF = re.compile(
    r"(?:oai:arXiv\.org:|arxiv\.org/(?:abs|pdf)/|^arXiv:|^)" + ARXIV_ID.pattern + r"(?:\.pdf)?$",
    re.IGNORECASE,
)
_SAX_WHERE = re.compile(r"^<unknown>:\d+:\d+:\s*")
_AUTHOR_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")


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
    if not data.strip():
        raise SourceError(f"{origin}: empty document, expected an RSS/Atom feed")
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
            raise SourceError(f"{origin}: not a readable RSS/Atom feed ({problem}); check the URL")
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
    seen_at = datetime.combine(_feed_day(result.get("feed", {}), captured), datetime.min.time())
    seen_at = seen_at.replace(tzinfo=UTC)
    count = 0
    for position, raw in enumerate(raw_entries, 1):
        entry = _entry(raw, position, origin=origin, source=source, seen_at=seen_at, warn=warn)
        if entry is not None:
            count += 1
            yield entry
    if not raw_entries:
        warn(SourceWarning(origin, 0, "feed has no entries (arXiv lists none at weekends)"))
    elif count == 0:
        warn(SourceWarning(origin, 0, "no usable entries in the feed"))


def arxiv_ref(text: str) -> tuple[str, int | None] | None:
    """`oai:arXiv.org:2401.01234v2` or `https://arxiv.org/abs/2401.01234v2` -> (id, 2)."""
    match = _ARXIV_REF.search(text.strip())
    if not match:
        return None
    return match["id"], int(match["version"]) if match["version"] else None


def _entry(
    raw: Mapping[str, object],
    position: int,
    *,
    origin: str,
    source: str,
    seen_at: datetime,
    warn: WarnFn,
) -> FeedEntry | None:
    title = normalize_space(_text(raw.get("title")))
    if not title:
        warn(SourceWarning(origin, 0, f"entry {position}: no title; skipped", skipped=True))
        return None
    label = f"entry {position} ({title[:50]!r})"
    summary = _text(raw.get("summary"))
    prefix = _ARXIV_PREFIX.match(summary)
    announce = _text(raw.get("arxiv_announce_type")).strip().lower()
    if prefix:
        announce = announce or prefix["type"].lower()
        abstract = summary[prefix.end() :]
    else:
        abstract = summary.split("Abstract:", 1)[1] if "Abstract:" in summary else summary
        if not _is_plain_text(raw) and not announce:
            abstract = _html_text(abstract)
    abstract = normalize_space(abstract)
    ref = None
    for candidate in (raw.get("id"), raw.get("link"), prefix["id"] if prefix else None):
        if isinstance(candidate, str) and (ref := arxiv_ref(candidate)):
            break
    if ref is None and announce:
        warn(SourceWarning(origin, 0, f"{label}: no arXiv id in guid or link; kept"))
    if not abstract:
        warn(SourceWarning(origin, 0, f"{label}: no abstract"))
    revision = announce in REVISIONS
    link = _text(raw.get("link")).strip()
    paper = Paper(
        id=ref[0] if ref else title_id(title),
        title=title,
        abstract=abstract,
        published=None if revision else _entry_day(raw),
        authors_count=_authors_count(raw),
        arxiv_id=ref[0] if ref else None,
        url=ABS_URL + ref[0]
        if ref
        else (link if link.startswith(("http://", "https://")) else None),
        sources=(source,),
        first_seen=seen_at,
        last_seen=seen_at,
        revision=revision,
    )
    return FeedEntry(paper=paper, announce_type=announce, version=ref[1] if ref else None)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _is_plain_text(raw: Mapping[str, object]) -> bool:
    detail = raw.get("summary_detail")
    return isinstance(detail, Mapping) and detail.get("type") == "text/plain"


def _html_text(markup: str) -> str:
    """The text of an HTML fragment (a generic feed's description), tags dropped."""
    if "<" not in markup and "&" not in markup:
        return markup
    tree = LexborHTMLParser(f"<body>{markup}</body>")
    return tree.body.text(separator=" ") if tree.body is not None else markup


def _authors_count(raw: Mapping[str, object]) -> int | None:
    """Atom lists one author per element; RSS `dc:creator` joins them with commas."""
    authors = raw.get("authors")
    names = (
        [a.get("name", "") for a in authors if isinstance(a, Mapping)]
        if isinstance(authors, list)
        else []
    )
    names = [n for n in names if isinstance(n, str) and n.strip()]
    if len(names) > 1:
        return len(names)
    if names:
        return len([n for n in _AUTHOR_SPLIT.split(names[0]) if n.strip()])
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
