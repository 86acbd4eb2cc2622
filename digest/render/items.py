"""What an item shows besides its title: where it links, who wrote it, what it says.

The same answers for the email (HTML and text), the Markdown and text previews and the
archive, so a paper links to the same places everywhere:

- `item_links`: the paper page, arXiv, PDF, code, project page and DOI when known, each
  URL once and only http(s) ones; the archive permalink when nothing else is known.
- `paper_link`: where a title links (the first of those).
- `shown_snippets`: the abstract sentences that matched (the ranker chose them), else
  the opening ones; `mark_words` highlights the words that matched in them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from markupsafe import Markup

from digest.links import paper_file
from digest.model import DigestItem, Match, Paper
from digest.render.filters import mark_spans, md_escape, safe_url, sentences
from digest.text import clean

#: An arXiv id we build links from (new style `2401.01234v2`, old style `hep-th/9901001`).
ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}(v\d+)?|[a-z][a-z.-]*(\.[A-Z]{2})?/\d{7}(v\d+)?")
_DOI = re.compile(r"10\.\d{4,9}/[^\s\"'<>`\\]+")
# What a Markdown link destination in <...> must not hold raw.
_MD_URL_UNSAFE = re.compile(r"[\\<>()\[\]`\s]")


def _same_place(url: str) -> str:
    """A URL's identity for "is this link a repeat": scheme, `www.`, a trailing slash, an
    arXiv version and abs/pdf-less case aside."""
    parts = urlsplit(url)
    host = parts.netloc.lower().removeprefix("www.")
    path = parts.path.rstrip("/")
    if host == "arxiv.org":
        path = re.sub(r"v\d+$", "", path)
    return f"{host}{path}?{parts.query}"


def _page_label(url: str) -> str:
    host = urlsplit(url).netloc.lower().removeprefix("www.")
    if host == "huggingface.co":
        return "Hugging Face"
    if host == "arxiv.org":
        return "arXiv"
    return "Paper page"


@functools.lru_cache(maxsize=65536)
def item_links(paper: Paper, permalink: str = "") -> tuple[tuple[str, str], ...]:
    """(label, url) of the places a paper can be read, best first (the title links to the
    first): its page, arXiv, PDF, code, project page, DOI. Each place once (the same URL
    twice, or arXiv's abstract page given as the paper's page, is one link), every URL
    http(s). With none of these, the archive `permalink` (when given) stands in.

    Cached: a day's items are a few thousand papers, each shown to many readers."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(label: str, url: str | None) -> None:
        url = safe_url(url)
        if url and (place := _same_place(url)) not in seen:
            seen.add(place)
            out.append((label, url))

    arxiv = paper.arxiv_id if paper.arxiv_id and ARXIV_ID.fullmatch(paper.arxiv_id) else ""
    if paper.url:
        add(_page_label(clean(paper.url)), paper.url)
    if arxiv:
        add("arXiv", f"https://arxiv.org/abs/{arxiv}")
    add("PDF", paper.pdf_url or (f"https://arxiv.org/pdf/{arxiv}" if arxiv else None))
    stars = f" ★ {paper.code_stars:,}" if paper.code_stars else ""
    add(f"Code{stars}", paper.code_url)
    add("Project page", paper.project_url)
    if paper.doi and _DOI.fullmatch(paper.doi):
        add("DOI", f"https://doi.org/{paper.doi}")
    if not out and permalink:
        add("Archive", permalink)
    return tuple(out)


def paper_link(paper: Paper, base_url: str = "") -> str:
    """Where a title links: the first of `item_links`, the archive permalink at worst."""
    links = paper_links(paper, base_url)
    return links[0][1] if links else ""


def permalink(paper: Paper, base_url: str) -> str:
    """The paper's page in the archive at `base_url` ("" without one)."""
    return f"{base_url}papers/{paper_file(paper.id)}" if base_url else ""


def shown_snippets(item: DigestItem) -> tuple[str, ...]:
    """The abstract sentences an item shows: those that matched, else its opening."""
    return _shown(item.paper.abstract, item.snippets)


@functools.lru_cache(maxsize=65536)
def _shown(abstract: str, found: tuple[str, ...]) -> tuple[str, ...]:
    # Cached by value: readers share papers, and an abstract is cleaned and cut once.
    if found:
        return tuple(clean(s) for s in found)
    opening = sentences(abstract)
    return (opening,) if opening else ()


def _word_spans(text: str, words: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where `words` stand in `text` as whole words, case aside: sorted, not overlapping
    (the longer word wins). `str.find`, not a regex: a regex of each item's words would
    be compiled once per item, which costs more than the search."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a letter whose lower case is longer: offsets shift
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    found: list[tuple[int, int]] = []
    for word in sorted({w.lower() for w in words if w.strip()}, key=len, reverse=True):
        at = lowered.find(word)
        while at >= 0:
            end = at + len(word)
            whole = (at == 0 or not lowered[at - 1].isalnum()) and (
                end == len(lowered) or not lowered[end].isalnum()
            )
            if whole and all(end <= s or at >= e for s, e in found):
                found.append((at, end))
            at = lowered.find(word, end)
    return sorted(found)


def matched_words(matches: Sequence[Match]) -> tuple[str, ...]:
    """Every spelling of the matched words, for `mark_words`."""
    if len(matches) == 1:
        return matches[0].words
    return tuple(dict.fromkeys(w for m in matches for w in m.words))


def mark_words(text: str, words: tuple[str, ...], fmt: str = "html") -> str:
    """`text` with `words` marked as whole words: <mark> (html), **bold** (markdown),
    nothing (text). Everything else is escaped for the format."""
    return mark_spans(text, _word_spans(text, words) if words else (), fmt)


def paper_links(paper: Paper, base_url: str = "") -> tuple[tuple[str, str], ...]:
    """`item_links` with the archive permalink at `base_url` as the stand-in."""
    return item_links(paper, permalink(paper, base_url))


def snippets(item: DigestItem, fmt: str = "html") -> str:
    """The shown snippets (`shown_snippets`) joined by " … ", matched words marked and
    everything escaped for `fmt` (html, markdown, text)."""
    return _marked(item.paper.abstract, item.snippets, matched_words(item.matches), fmt)


def email_snippets(item: DigestItem) -> tuple[str, str]:
    """`snippets` as HTML and as text, with one look-up (the email needs both)."""
    words = matched_words(item.matches)
    abstract, found = item.paper.abstract, item.snippets
    return _marked(abstract, found, words, "html"), _marked(abstract, found, words, "text")


@functools.lru_cache(maxsize=65536)
def _marked(abstract: str, found: tuple[str, ...], words: tuple[str, ...], fmt: str) -> str:
    # Cached by value: one paper matched the same way by many readers is marked once.
    joined = " … ".join(mark_words(s, words, fmt) for s in _shown(abstract, found))
    return Markup(joined) if fmt == "html" else joined


def md_links(links: Sequence[tuple[str, str]]) -> str:
    """`[PDF](<url>) · [Code](<url>)`: (label, url) pairs as Markdown links, the labels
    escaped (`md_escape`) and the URLs made safe for a destination (`md_url`)."""
    return " · ".join(f"[{md_escape(label)}](<{md_url(url)}>)" for label, url in links)


def md_url(url: str) -> str:
    """A URL for a Markdown link destination `<...>`: the characters Markdown could read
    there (backslash escapes, brackets, parentheses, code-span backticks, spaces; the
    last three for renderers without `<...>` destinations) percent-encoded, so the link
    goes where the URL says and cannot end early."""
    return _MD_URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url)
