"""Jinja filters and text helpers: every untrusted string is escaped for where it goes.

Markdown output escapes untrusted text with `md_escape`; every format drops control and
bidi-override characters that could disguise text (`clean`); HTML goes through Jinja's
autoescape or `markupsafe.escape`; config Markdown is sanitised with nh3.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import markdown as markdown_lib
import nh3
from markupsafe import Markup, escape

from digest.model import Digest, DigestItem, Paper, Profile, why_line
from digest.text import clean

# Inline specials; `#`, `+`, `-`, `>` and `1.` matter only where a line starts.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~!&])")
_MD_LINE_START = re.compile(r"^(?:[#+\-=>]|(\d+)[.)])")
_SPACES = re.compile(r"\s+")


def md_escape(text: object) -> str:
    """Inline Markdown that shows `text` literally: no links, HTML or emphasis from it."""
    return _MD_LINE_START.sub(_escape_line_start, _MD_SPECIAL.sub(r"\\\1", clean(text)))


def _escape_line_start(m: re.Match[str]) -> str:
    return f"{m.group(1)}\\{m.group(0)[-1]}" if m.group(1) else "\\" + m.group(0)


def sentences(text: object, count: int = 2, max_chars: int = 400) -> str:
    """The first `count` sentences of an abstract, cut at `max_chars` with an ellipsis."""
    plain = clean(text)
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", plain)
    out = " ".join(parts[:count])
    if len(out) > max_chars:
        out = out[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return out


_SAFE_URL = re.compile(r"https?://[^\s\"'<>`]+")


def safe_url(url: object) -> str:
    """`url` when it is http(s) with no spaces or quotes, else "" (no javascript: links)."""
    text = clean(url) if url else ""
    return text if _SAFE_URL.fullmatch(text) else ""


#: Names an item lists before "et al.".
AUTHORS_SHOWN = 3


def authors_line(paper: Paper) -> str:
    """`Ada Lovelace, Alan Turing, Grace Hopper et al.`: the first three names, "et al."
    when there are more; else the organisation, a count, or "authors unknown"."""
    # Clean only as many names as are shown, and one more to know whether there are
    # more (an archive's day page lists 2,000 papers).
    names = []
    for author in paper.authors:
        if name := clean(author):
            names.append(name)
            if len(names) > AUTHORS_SHOWN:
                break
    if names:
        more = len(names) > AUTHORS_SHOWN or (paper.authors_count or 0) > AUTHORS_SHOWN
        return ", ".join(names[:AUTHORS_SHOWN]) + (" et al." if more else "")
    if paper.organization:
        return clean(paper.organization)
    if paper.authors_count:
        return f"{paper.authors_count} author{'' if paper.authors_count == 1 else 's'}"
    return "authors unknown"


def paper_meta(paper: Paper) -> str:
    """`Ada Lovelace, Alan Turing, Grace Hopper et al. · 2025-10-06 · ▲ 8`: who, when
    and how popular, plain text."""
    parts = [authors_line(paper)]
    if paper.published:
        parts.append(paper.published.isoformat())
    if paper.upvotes:
        parts.append(f"▲ {paper.upvotes}")
    return " · ".join(parts)


@functools.lru_cache(maxsize=65536)
def _spans(text: str, profile: Profile) -> tuple[tuple[int, int], ...]:
    # The ranker's own analyzer (numpy and scipy): loaded when a template first highlights.
    from digest.rank.explain import match_spans

    return tuple(match_spans(text, profile))


def highlight(text: object, profile: Profile, fmt: str = "html") -> str:
    """`text` with the profile's matching words marked: <mark> (html), **bold** (markdown).

    Every other character is escaped for the format, so untrusted text stays inert.
    """
    plain = clean(text)
    joined = mark_spans(plain, _spans(plain, profile), fmt)
    if fmt == "markdown":
        return _MD_LINE_START.sub(_escape_line_start, joined)
    return joined


def mark_spans(text: str, spans: Iterable[tuple[int, int]], fmt: str = "html") -> str:
    """`text` with the sorted, non-overlapping character `spans` marked: <mark> (html),
    **bold** (markdown), nothing (text); every other character escaped for the format.
    Markup for html."""
    escape_part = {
        "html": lambda t: str(escape(t)),
        "markdown": lambda t: _MD_SPECIAL.sub(r"\\\1", t),
    }.get(fmt, str)
    marks = {"html": ("<mark>", "</mark>"), "markdown": ("**", "**")}.get(fmt, ("", ""))
    out, pos = [], 0
    for start, end in spans:
        out += [escape_part(text[pos:start]), marks[0], escape_part(text[start:end]), marks[1]]
        pos = end
    out.append(escape_part(text[pos:]))
    joined = "".join(out)
    return Markup(joined) if fmt == "html" else joined


def why(item: DigestItem, fmt: str = "text") -> str:
    """The one-line "why this paper": the words of the paper that matched (emphasised),
    where, "partly" when only some words of a keyword matched, and the keyword as typed
    when the words are not simply it (`text-to-speech (abstract) for TTS`)."""
    if not item.matches:
        return "popular today"
    emphasis = {
        "html": lambda t: str(Markup("<mark>%s</mark>") % clean(t)),
        "markdown": lambda t: f"**{md_escape(t)}**",
    }.get(fmt, clean)
    plain = (
        (lambda t: str(escape(clean(t))))
        if fmt == "html"
        else (md_escape if fmt == "markdown" else clean)
    )
    parts = []
    for match in item.matches:
        if match.by_ratings or match.by_meaning:
            continue
        said = ", ".join(emphasis(w) for w in match.shown)
        part = f"{'partly ' if match.partly else ''}{said} ({' + '.join(match.fields)})"
        parts.append(part if match.names_keyword else f"{part} for {plain(match.keyword)}")
    close = [plain(m.keyword) for m in item.matches if m.by_meaning]
    # A paper the reader's likes brought in or moved up names the liked paper.
    liked = [plain(m.liked) for m in item.matches if m.by_ratings]
    joined = why_line(parts, close, liked)
    return Markup(joined) if fmt == "html" else joined


_ALLOWED_TAGS = {"p", "br", "strong", "em", "a", "ul", "ol", "li", "code", "blockquote"}


def markdown_html(text: object) -> Markup:
    """Trusted-looking Markdown from config (intro/footer notes) -> sanitised HTML.

    Python-Markdown passes raw HTML and `javascript:` links through, so its output goes
    through nh3 with a small allow-list; links get rel="noopener noreferrer".
    """
    html = markdown_lib.markdown(str(text), output_format="html")
    return Markup(
        nh3.clean(
            html,
            tags=_ALLOWED_TAGS,
            attributes={"a": {"href", "title"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener noreferrer",
        )
    )


def tidy_text(text: str) -> str:
    """Plain text with at most one blank line in a row and one final newline."""
    while "\n\n\n" in text:  # str.replace is C; a regex scanning every newline is not
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"


def empty_reasons(digest: Digest) -> list[str]:
    """Why a digest is empty, so it never arrives blank."""
    if digest.item_count:
        return []
    if digest.papers_considered == 0:
        return ["No new papers arrived since your last digest."]
    return [f"None of the {digest.papers_considered} new papers matched your keywords today."]


def preheader(digest: Digest) -> str:
    """The inbox preview line: the first titles, plain text, about 110 characters."""
    titles = [clean(i.paper.title) for s in digest.sections for i in s.items[:2]]
    if not titles:
        return (empty_reasons(digest) or ["Your papers-digest"])[0]
    line = " · ".join(titles)
    return line if len(line) <= 110 else line[:109].rsplit(" ", 1)[0] + "…"
