"""Kind by content: what a file named on the command line (or a source of kind `auto`) is.

    JSON (`{` or `[` first)                        hf_daily: a daily papers answer
    XML whose root is <rss>, <feed> or <rdf:RDF>   feed: RSS 2.0, Atom, RSS 1.0 (RDF)
    HTML                                           listing: a Hugging Face papers page
    UTF-8 text                                     listing: a text capture like seeds/
    anything else (binary, other XML, ...)         a SourceError naming the file

Only the first bytes are looked at: the parser of the kind reads the whole document.
"""

from __future__ import annotations

import codecs
import re

from digest.errors import SourceError
from digest.sources.days import is_url

_HEAD = 16_384
#: Byte-order marks of encodings other than UTF-8, which XML allows.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: What some binary files start with, to name them in the error.
_MAGIC = (
    (b"%PDF", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
#: Markup before the root element: the XML declaration, processing instructions,
#: comments, a doctype (without an internal subset).
_PROLOG = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!doctype\s[^>\[]*>)", re.IGNORECASE | re.DOTALL)
_DOCTYPE_HTML = re.compile(r"<!doctype\s+html", re.IGNORECASE)
_ROOT = re.compile(r"<([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)")
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_HTML_ROOTS = frozenset(
    {
        "html",
        "head",
        "body",
        "meta",
        "title",
        "link",
        "script",
        "style",
        "div",
        "main",
        "article",
        "section",
        "header",
        "nav",
        "footer",
        "p",
        "a",
        "span",
        "ul",
        "ol",
        "li",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "img",
        "form",
        "noscript",
        "template",
    }
)
#: The kinds `sniff` gives.
KIND_JSON, KIND_FEED, KIND_LISTING = "hf_daily", "feed", "listing"


def sniff(data: bytes, origin: str) -> str:
    """The kind of the document `data` ("hf_daily", "feed" or "listing").

    A document that is none of them is a SourceError that names `origin` and says what
    was found instead.
    """
    what = "response" if is_url(origin) else "file"
    head = data[:_HEAD]
    text = _head_text(head)
    if text is None:
        found = next((name for magic, name in _MAGIC if head.startswith(magic)), "binary data")
        raise SourceError(
            f"{origin}: {found}, not a listing page, feed or daily papers JSON; "
            f"check that the {what} is the page or feed it should be"
        )
    body = text.lstrip()
    if not body:
        raise SourceError(f"{origin}: empty {what}: nothing to read")
    if body[0] in "{[":
        return KIND_JSON
    if body[0] == "<":
        return _markup_kind(body, origin)
    return KIND_LISTING


def _head_text(head: bytes) -> str | None:
    """The first bytes as text, or None when they are binary."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head.decode(encoding, "replace")
    if any(head.startswith(magic) for magic, _ in _MAGIC) or b"\x00" in head:
        return None
    return head.decode("utf-8-sig", "replace")  # a cut character at the end is harmless


def _markup_kind(body: str, origin: str) -> str:
    """A feed for RSS/Atom/RDF roots, a listing page for HTML; other XML is refused."""
    rest = body
    while match := _PROLOG.match(rest):
        if _DOCTYPE_HTML.match(match.group(0).strip()):
            return KIND_LISTING
        rest = rest[match.end() :]
    root = _ROOT.match(rest.lstrip())
    name = root[1] if root else ""
    local = name.rsplit(":", 1)[-1].casefold()
    if local in _FEED_ROOTS:
        return KIND_FEED
    if local in _HTML_ROOTS or not body.startswith("<?xml"):
        return KIND_LISTING
    raise SourceError(
        f"{origin}: an XML document with root <{name or '?'}>, not an RSS, Atom or RDF feed"
    )
