"""Hugging Face papers listing pages as HTML (`https://huggingface.co/papers?date=...`).

The page carries its papers twice, and this parser reads whichever it finds first:

1. The data the page is rendered from: a component placeholder
   `<div class="SVELTE_HYDRATER contents" data-target="DailyPapers" data-props="{...}">`
   whose `data-props` attribute holds, HTML-escaped, the same items as the daily papers
   API (`{"dateString": "2025-10-16", "dailyPapers": [...]}`). These go through
   `hf_api.read_items`, so the records are exactly the API's.
2. The rendered cards, one `<article>` per paper, read the way the text captures
   (`listing.py`) read the same page: title (the `<h3>` linking to `/papers/<arXiv id>`),
   abstract (the card's longest `<p>`), a metadata block of an author count
   (`• 9 authors`) or an organisation (`deepmind Deepmind`), `·`, a date (`Jul 23`,
   `Sep 13, 2023`) and the upvote count. The page's header day (`Oct 16`) is the
   capture day; dates without a year belong to its year.

A page nested deeper than `MAX_DEPTH` elements is refused before it is parsed (the HTML
parser's work grows with depth times size: a 3.3 MB page of nested tags would take
hours), and a card that holds other cards is skipped (its text would be read once per
card inside it), so the work stays linear in the page's size.

Records match the text captures' field for field; in addition the HTML gives the arXiv
id (the paper's id and `arxiv_id`) and the paper page URL. Card problems are reported
with the line of the card's `<article>` tag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

from selectolax.lexbor import LexborHTMLParser, LexborNode

from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.sources import hf_api
from digest.sources.base import WarnFn
from digest.sources.days import day_in_origin
from digest.sources.listing import (  # the text captures' patterns: cards read alike
    AUTHORS_LINE,
    DATE_LINE,
    decode_utf8,
    organization_name,
    resolve_header_day,
)
from digest.text import normalize_space, title_id

_PAPER_LINK = re.compile(r"/papers/(?P<ref>[^/?#\s]+)")
_ARTICLE_TAG = re.compile(rb"<article\b", re.IGNORECASE)
_DOT = "·"
#: Elements open at once, past which a page is refused (a real listing page: about 30).
MAX_DEPTH = 512
_MARKUP = re.compile(rb"<(!--|/?[a-zA-Z][a-zA-Z0-9:-]*)")
#: Start tags that open no element to close (void), or whose end tag may be left out and
#: that close themselves (`<p><p>`): not counted as depth.
_NOT_NESTING = frozenset(
    b"area base br col embed hr img input link meta param source track wbr p li dt dd"
    b" option optgroup tr td th tbody thead tfoot colgroup caption rb rt rtc rp html head"
    b" body".split()
)
#: Elements whose content is text, not tags.
_RAW_TEXT = frozenset(b"script style textarea title xmp noscript plaintext".split())
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def parse(
    data: bytes, *, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[Paper]:
    """Papers of one listing page (the `Parser` protocol)."""
    text = decode_utf8(data, origin, "an HTML page")
    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise SourceError(
            f"{origin}: elements nested more than {MAX_DEPTH} deep; not a Hugging Face papers"
            " listing page (a real one nests about 30)"
        )
    tree = LexborHTMLParser(text)
    if tree.css_first('[data-target="DailyPapers"]') is None and tree.css_first("article") is None:
        raise SourceError(
            f"{origin}: not a Hugging Face papers listing page (no DailyPapers data and no"
            " paper cards); is it the page of https://huggingface.co/papers?"
        )
    from_island = list(_island(tree, origin, source, captured, warn))
    if from_island:
        yield from from_island
        return
    count = 0
    for paper in _cards(tree, data, origin, source, captured, warn):
        count += 1
        yield paper
    if count == 0:
        warn(
            SourceWarning(
                origin,
                0,
                "no paper entries found (not a Hugging Face papers page, or its layout changed)",
            )
        )


def nesting_depth(data: bytes, limit: int) -> int:
    """How deep the page's elements nest, counted from its tags in one pass (comments
    and script/style text skipped), stopping as soon as it passes `limit`.

    An estimate from the tags alone (the HTML parser may close some elements early),
    but never below the depth the parser builds for properly closed markup.
    """
    depth = deepest = 0
    pos = 0
    while (found := _MARKUP.search(data, pos)) is not None:
        token = found[1]
        if token == b"!--":
            end = data.find(b"-->", found.end())
            pos = len(data) if end < 0 else end + 3
            continue
        end = data.find(b">", found.end())
        if end < 0:
            break
        pos = end + 1
        if token.startswith(b"/"):
            depth = max(0, depth - 1)
            continue
        name = token.lower()
        if name in _RAW_TEXT:
            close = data.find(b"</" + name, pos)  # case differs rarely; then: text to the end
            pos = len(data) if close < 0 else close
        elif name not in _NOT_NESTING and data[end - 1 : end] != b"/":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
    return deepest


# -- 1. the page's data ----------------------------------------------------------------


def _island(
    tree: LexborHTMLParser, origin: str, source: str, captured: date, warn: WarnFn
) -> Iterator[Paper]:
    node = tree.css_first('[data-target="DailyPapers"][data-props]')
    if node is None:
        return
    raw = node.attributes.get("data-props") or ""
    try:
        props = json.loads(raw)  # selectolax has already turned &quot; back into "
    except RecursionError:
        warn(
            SourceWarning(
                origin,
                0,
                "the page's DailyPapers data is nested too deeply; reading the cards instead",
            )
        )
        return
    except json.JSONDecodeError as exc:
        warn(
            SourceWarning(
                origin,
                0,
                f"the page's DailyPapers data is not JSON ({exc.msg}); reading the cards instead",
            )
        )
        return
    items = props.get("dailyPapers") if isinstance(props, dict) else None
    if not isinstance(items, list):
        warn(SourceWarning(origin, 0, "the page's DailyPapers data has no paper list"))
        return
    day = hf_api.listing_day(props) or day_in_origin(origin)
    for item in hf_api.read_items(
        items, origin=origin, source=source, day=day, captured=captured, warn=warn
    ):
        yield item.paper


# -- 2. the rendered cards ---------------------------------------------------------------


def _cards(
    tree: LexborHTMLParser,
    data: bytes,
    origin: str,
    source: str,
    captured: date,
    warn: WarnFn,
) -> Iterator[Paper]:
    cards = tree.css("article")
    lines = _article_lines(data)
    outer = _holding_cards(cards)
    if outer:
        warn(SourceWarning(origin, 0, f"{len(outer)} cards hold other cards; read the inner ones"))
    day = _page_day(tree, cards, origin, captured, warn)
    seen_at = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    for index, card in enumerate(cards):
        if card.mem_id in outer:
            continue
        line = lines[index] if index < len(lines) else 0
        paper = _card(card, line, origin, source, day, seen_at, warn)
        if paper is not None:
            yield paper


def _holding_cards(cards: list[LexborNode]) -> set[int]:
    """The `mem_id`s of the cards that hold another card.

    Walks up from each card, but never twice through a node: the ancestors above a node
    seen before were seen (and marked) then, so the walks take one step per node.
    """
    ids = {card.mem_id for card in cards}
    outer: set[int] = set()
    seen: set[int] = set()
    for card in cards:
        node = card.parent
        while node is not None and node.mem_id not in seen:
            seen.add(node.mem_id)
            if node.mem_id in ids:
                outer.add(node.mem_id)
            node = node.parent
    return outer


def _article_lines(data: bytes) -> list[int]:
    """The line of each `<article` tag, in document order (for warnings)."""
    lines, line, counted = [], 1, 0
    for found in _ARTICLE_TAG.finditer(data):  # counting on from the last tag: one pass
        line += data.count(b"\n", counted, found.start())
        counted = found.start()
        lines.append(line)
    return lines


def _page_day(
    tree: LexborHTMLParser,
    cards: list[LexborNode],
    origin: str,
    captured: date,
    warn: WarnFn,
) -> date:
    """The day the URL or file name names, else the header day printed above the first
    card, else `captured`."""
    named = day_in_origin(origin)
    if named is not None:
        return named
    body = tree.body
    if body is None:
        return captured
    first_title = _title(cards[0]) if cards else ""
    for line in body.text(separator="\n").splitlines():
        text = normalize_space(line)
        if first_title and text == first_title:
            break
        header = DATE_LINE.match(text)
        if header and not header["up"] and not header["year"]:
            return resolve_header_day(header, captured, origin, 0, warn)
    return captured


def _title(card: LexborNode) -> str:
    heading = card.css_first("h3") or card.css_first("h2")
    if heading is not None:
        return normalize_space(heading.text(separator=""))
    link = card.css_first('a[href*="/papers/"]')
    return normalize_space(link.text(separator="")) if link is not None else ""


def _card(
    card: LexborNode,
    line: int,
    origin: str,
    source: str,
    day: date,
    seen_at: datetime,
    warn: WarnFn,
) -> Paper | None:
    title = _title(card)
    if not title:
        warn(SourceWarning(origin, line, "paper card without a title; skipped", skipped=True))
        return None
    ref = None
    for link in card.css('a[href*="/papers/"]'):
        found = _PAPER_LINK.search(link.attributes.get("href") or "")
        if found and (ref := hf_api.arxiv_id(found["ref"])):
            break
    if ref is None:
        warn(SourceWarning(origin, line, f"card {title[:60]!r} has no /papers/<arXiv id> link"))
    paragraphs = [normalize_space(p.text(separator="")) for p in card.css("p")]
    abstract = max(paragraphs, key=len, default="")
    if not abstract:
        warn(SourceWarning(origin, line, f"entry {title[:60]!r} has no abstract"))
    fields = _meta(card, line, origin, day, warn)
    return Paper(
        id=ref or title_id(title),
        title=title,
        abstract=abstract,
        arxiv_id=ref,
        url=hf_api.PAPER_URL + ref if ref else None,
        sources=(source,),
        first_seen=seen_at,
        last_seen=seen_at,
        **fields,  # type: ignore[arg-type]
    )


def _meta(card: LexborNode, line: int, origin: str, day: date, warn: WarnFn) -> dict[str, object]:
    """Authors or organisation, date and upvotes from the card's other text."""
    rest = card.clone()
    for node in rest.css("h3, h2, p, script, style, svg"):
        node.decompose()
    lines = [normalize_space(t) for t in rest.text(separator="\n").splitlines()]
    lines = [t for t in lines if t]
    fields: dict[str, object] = {}
    if _DOT not in lines:
        authors = next((m for t in lines if (m := AUTHORS_LINE.match(t))), None)
        if authors:
            fields["authors_count"] = int(authors["n"].replace(",", ""))
        if lines:
            warn(SourceWarning(origin, line, "metadata block without the '·' separator"))
        return fields
    dot = lines.index(_DOT)
    head = " ".join(t for t in lines[:dot] if not t.isdigit())
    upvotes = [int(t) for t in lines if t.isdigit()]
    if head:
        authors = AUTHORS_LINE.match(head)
        if authors:
            fields["authors_count"] = int(authors["n"].replace(",", ""))
        else:
            fields["organization"] = organization_name(head)
    after = [t for t in lines[dot + 1 :] if not t.isdigit()]
    found = DATE_LINE.match(after[0]) if after else None
    if found is None:
        warn(SourceWarning(origin, line, "metadata block without a date"))
    else:
        published = _entry_date(found, day)
        if published is None:
            warn(SourceWarning(origin, line, f"bad date {after[0]!r}"))
        else:
            fields["published"] = published
        if found["up"]:
            upvotes.append(int(found["up"]))
    if upvotes:
        fields["upvotes"] = upvotes[-1]
    return fields


def _entry_date(match: re.Match[str], day: date) -> date | None:
    """As the text captures: a date without a year lies in the capture day's year."""
    month = match["mon"].lower()[:3]
    year = int(match["year"]) if match["year"] else day.year
    try:
        return date(year, _MONTHS.index(month) + 1, int(match["day"]))
    except ValueError:
        return None
