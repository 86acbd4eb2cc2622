"""Email bodies: the whole-template renderer, a composer that reuses fragments, and the
assembly of a reader's `OutgoingEmail` (digest and confirmation).

`EmailRenderer.render_whole` renders `email/digest.html.j2` and inlines its CSS with
css-inline: the reference, and fast enough for a handful of digests. `render` gives the
same email for a big send: each paper's fragment is rendered and CSS-inlined once a day,
and so is the page around it (with its per-reader values left as slots), so composing
one reader's digest is joining strings. A stamp is a template rendered with `@@slot@@`
markers, inlined, and split at the markers; the values that fill the slots are escaped
for the place they go.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import css_inline
import jinja2
from markupsafe import Markup, escape

from digest.config import DeliveryConfig
from digest.deliver.message import OutgoingEmail
from digest.model import Digest, DigestItem, DigestSection, Paper
from digest.render.filters import clean, empty_reasons, preheader, tidy_text, why
from digest.render.items import email_snippets
from digest.render.notices import message_domain


@dataclass(frozen=True, slots=True)
class Links:
    """Links of one reader's copy; "" where there is none (a preview)."""

    archive: str = ""
    manage: str = ""
    unsubscribe: str = ""
    #: The reader's rating link (`links.link(..., "rate", ...)`); each item appends
    #: `&paper=ID&vote=...` to it. One token per reader, so items stay shared fragments.
    rate: str = ""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A rendered digest email: subject, preheader, and both bodies."""

    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class _Stamp:
    """Literal parts and slot names, alternating: [lit, slot, lit, slot, ..., lit]."""

    parts: tuple[str, ...]

    @classmethod
    def of(cls, text: str, marker: re.Pattern[str]) -> _Stamp:
        return cls(tuple(marker.split(text)))

    def fill(self, values: Mapping[str, str]) -> str:
        parts = self.parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(values[parts[i]])
            out.append(parts[i + 1])
        return "".join(out)


#: Items (HTML and text, ~2 KB) a renderer keeps: a day's popular ones, in bounded memory.
ITEM_CACHE = 20_000


@dataclass
class EmailRenderer:
    """Renders digest emails from `templates/email/`; keeps a fragment cache per instance.

    Use one instance per day (or per send run): fragments are keyed by the paper (a
    frozen record), so two versions of one paper never share a fragment.
    """

    env: jinja2.Environment
    base_url: str = ""
    intro: str = ""  #: Markdown from config, shown under the header (sanitised)
    brand: str = "papers-digest"
    _css: str = field(init=False, default="")
    _papers_html: dict[tuple[Paper, bool], _Stamp] = field(init=False, default_factory=dict)
    _papers_text: dict[tuple[Paper, bool], _Stamp] = field(init=False, default_factory=dict)
    _stamps: dict[tuple[Any, ...], _Stamp] = field(init=False, default_factory=dict)
    _whys: dict[tuple[Any, ...], str] = field(init=False, default_factory=dict)
    #: (id(paper), id(matches), rated) -> (paper, matches, html, text): an item as it shows, for
    #: the run's readers who share it (the same objects: the planner shares them).
    #: With rating links, the HTML and text are split where the reader's link goes.
    _items: dict[tuple[int, int, bool], tuple[Paper, Any, tuple[str, ...], tuple[str, ...]]] = (
        field(init=False, default_factory=dict)
    )

    def __post_init__(self) -> None:
        assert self.env.loader is not None
        self._css = self.env.loader.get_source(self.env, "email/style.css")[0]
        self._inliner = css_inline.CSSInliner(
            load_remote_stylesheets=False, keep_at_rules=True, keep_style_tags=False
        )
        self._fragments = css_inline.CSSInliner(load_remote_stylesheets=False)
        # Slot markers carry a random nonce: text from a paper or a reader can never
        # spell one, so no title can open a slot or break a stamp.
        self._nonce = secrets.token_hex(8)
        self._marker = re.compile(rf"@@{self._nonce}:([a-z0-9_]+)@@")

    def _slot(self, name: str) -> Markup:
        return Markup(f"@@{self._nonce}:{name}@@")

    # -- the values every rendering shares ------------------------------------------

    def _context(self, digest: Digest, links: Links) -> dict[str, Any]:
        n = digest.item_count
        names = [clean(s.profile.name) for s in digest.sections]
        return {
            "title": f"{clean(digest.title)} — {digest.day.isoformat()}",
            "brand": self.brand,
            "heading": f"{n} new paper{'' if n == 1 else 's'} for you",
            "summary": f"{_long_date(digest.day)} · picked from "
            f"{digest.papers_considered} new paper{'' if digest.papers_considered == 1 else 's'}",
            "preheader": preheader(digest),
            "notes": [clean(note) for note in digest.notes] or empty_reasons(digest),
            "intro": self.intro,
            "profiles": ", ".join(names),
            "links": links,
            "rate_link": links.rate,
            "base_url": self.base_url,
            "css": Markup(self._css),
        }

    def subject(self, digest: Digest) -> str:
        """The subject line: count and the top paper; never contains a line break."""
        n = digest.item_count
        top = next((s.items[0].paper.title for s in digest.sections if s.items), "")
        head = f"{n} new paper{'' if n == 1 else 's'}" if n else "No new matches today"
        return clean(f"{digest.title}: {head}" + (f" — {top}" if top else ""))[:200]

    # -- the reference: one template, CSS inlined -----------------------------------

    def render_whole(self, digest: Digest, links: Links = Links()) -> RenderedEmail:
        """Render the whole templates and inline the CSS (slow, simple, the reference)."""
        ctx = self._context(digest, links)
        ctx["sections"] = [_section(s, digest, self.base_url) for s in digest.sections]
        html = self._inliner.inline(self.env.get_template("email/digest.html.j2").render(ctx))
        text = tidy_text(self.env.get_template("email/digest.txt.j2").render(ctx))
        return RenderedEmail(self.subject(digest), ctx["preheader"], html, text)

    # -- the fast path: cached fragments --------------------------------------------

    def render(self, digest: Digest, links: Links = Links()) -> RenderedEmail:
        """The same email as `render_whole`, composed from cached, pre-inlined fragments."""
        ctx = self._context(digest, links)
        body_html, body_text = [], []
        rate_html, rated = str(escape(links.rate)), bool(links.rate)
        for section in digest.sections:
            sec = _section(section, digest, self.base_url)
            values = {"name": str(escape(sec.name)), "empty": str(escape(sec.empty))}
            body_html.append(self._stamp("section.html", bool(sec.empty)).fill(values))
            plain = {"name": sec.name, "empty": sec.empty}
            body_text.append(self._stamp("section.txt", bool(sec.empty)).fill(plain))
            for item in section.items:
                html_parts, text_parts = self._item(item, rated)
                body_html.append(rate_html.join(html_parts))
                body_text.append(links.rate.join(text_parts))
            if sec.more:
                more = {"more": str(escape(sec.more)), "link": str(escape(sec.more_link))}
                body_html.append(self._stamp("more.html", bool(sec.more_link)).fill(more))
                plain_more = {"more": sec.more, "link": sec.more_link}
                body_text.append(self._stamp("more.txt", bool(sec.more_link)).fill(plain_more))
        shape = (
            len(ctx["notes"]),
            bool(links.archive),
            bool(links.manage),
            bool(links.unsubscribe),
            bool(ctx["profiles"]),
        )
        html_values = {
            "title": str(escape(ctx["title"])),
            "preheader": str(escape(ctx["preheader"])),
            "heading": str(escape(ctx["heading"])),
            "summary": str(escape(ctx["summary"])),
            "profiles": str(escape(ctx["profiles"])),
            "archive": str(escape(links.archive)),
            "manage": str(escape(links.manage)),
            "unsubscribe": str(escape(links.unsubscribe)),
            "body": "".join(body_html),
        }
        text_values = {
            **{k: str(ctx[k]) for k in ("title", "preheader", "heading", "summary", "profiles")},
            "archive": links.archive,
            "manage": links.manage,
            "unsubscribe": links.unsubscribe,
            "body": "".join(body_text),
        }
        for i, note in enumerate(ctx["notes"]):
            html_values[f"note{i}"] = str(escape(note))
            text_values[f"note{i}"] = note
        html = self._stamp("digest.html", shape).fill(html_values)
        text = tidy_text(self._stamp("digest.txt", shape).fill(text_values))
        return RenderedEmail(self.subject(digest), ctx["preheader"], html, text)

    def _item(self, item: DigestItem, rated: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """An item's HTML and text, cached by the identity of its paper and matches (an
        object kept in the cache is never freed, so its id is never reused), each split
        where the reader's rating link goes (one part without `rated`): the caller joins
        the parts with the reader's link, a few hundred bytes, not a pass over the body.
        The ranker makes one matches object per paper and way to match it, which decides
        the snippets too (`rank.explain`), so the snippets are made here once as well."""
        key = (id(item.paper), id(item.matches), rated)
        got = self._items.get(key)
        if got is None or got[0] is not item.paper or got[1] is not item.matches:
            if len(self._items) >= ITEM_CACHE:
                self._items.clear()
            keep = {"rate": str(self._slot("rate"))} if rated else {}
            snippets_html, snippets_text = email_snippets(item)
            html = self._paper_html(item.paper, rated).fill(
                {"why": self._why(item, "html"), "snippets": snippets_html, **keep}
            )
            text = self._paper_text(item.paper, rated).fill(
                {"why": self._why(item, "text"), "snippets": snippets_text, **keep}
            )
            slot = str(self._slot("rate"))
            got = self._items[key] = (
                item.paper,
                item.matches,
                tuple(html.split(slot)),
                tuple(text.split(slot)),
            )
        return got[2], got[3]

    def _why(self, item: DigestItem, fmt: str) -> str:
        """`filters.why`, once per set of matches (readers share keywords)."""
        key = (item.matches, fmt)
        got = self._whys.get(key)
        if got is None:
            if len(self._whys) > 100_000:
                self._whys.clear()
            got = self._whys[key] = why(item, fmt)
        return got

    def _stamp(self, kind: str, shape: Any) -> _Stamp:
        key = (kind, shape)
        stamp = self._stamps.get(key)
        if stamp is None:
            stamp = self._stamps[key] = self._make_stamp(kind, shape)
        return stamp

    def _make_stamp(self, kind: str, shape: Any) -> _Stamp:
        if kind.startswith("more"):
            ext = kind.split(".")[1]
            values = {"more": self._slot("more"), "link": self._slot("link") if shape else ""}
            rendered = self.env.get_template(f"email/_more.{ext}.j2").render(values)
            if ext == "html":
                rendered = self._fragments.inline_fragment(rendered, self._css)
            return _Stamp.of(rendered, self._marker)
        if kind.startswith("section"):
            head = {"name": self._slot("name"), "empty": self._slot("empty") if shape else ""}
            ext = kind.split(".")[1]
            rendered = self.env.get_template(f"email/_section.{ext}.j2").render(head)
            if ext == "html":
                rendered = self._fragments.inline_fragment(rendered, self._css)
            return _Stamp.of(rendered, self._marker)
        n_notes, archive, manage, unsubscribe, profiles = shape
        ctx: dict[str, Any] = {
            "title": self._slot("title"),
            "brand": self.brand,
            "heading": self._slot("heading"),
            "summary": self._slot("summary"),
            "preheader": self._slot("preheader"),
            "notes": [self._slot(f"note{i}") for i in range(n_notes)],
            "intro": self.intro,
            "profiles": self._slot("profiles") if profiles else "",
            "links": Links(
                self._slot("archive") if archive else "",
                self._slot("manage") if manage else "",
                self._slot("unsubscribe") if unsubscribe else "",
            ),
            "base_url": self.base_url,
            "css": Markup(self._css),
        }
        if kind == "digest.html":
            ctx["body_html"] = self._slot("body")
            page = self.env.get_template("email/digest.html.j2").render(ctx)
            return _Stamp.of(self._inliner.inline(page), self._marker)
        ctx["body_text"] = self._slot("body")
        return _Stamp.of(self.env.get_template("email/digest.txt.j2").render(ctx), self._marker)

    def _paper_html(self, paper: Paper, rated: bool) -> _Stamp:
        stamp = self._papers_html.get((paper, rated))
        if stamp is None:
            html = self.env.get_template("email/_item.html.j2").render(
                paper=paper,
                why_html=self._slot("why"),
                snippets_html=self._slot("snippets"),
                base_url=self.base_url,
                rate_link=self._slot("rate") if rated else "",
            )
            stamp = self._papers_html[paper, rated] = _Stamp.of(
                self._fragments.inline_fragment(html, self._css), self._marker
            )
        return stamp

    def _paper_text(self, paper: Paper, rated: bool) -> _Stamp:
        stamp = self._papers_text.get((paper, rated))
        if stamp is None:
            text = self.env.get_template("email/_item.txt.j2").render(
                paper=paper,
                why_text=self._slot("why"),
                snippets_text=self._slot("snippets"),
                base_url=self.base_url,
                rate_link=self._slot("rate") if rated else "",
            )
            stamp = self._papers_text[paper, rated] = _Stamp.of(text, self._marker)
        return stamp


@functools.lru_cache(maxsize=64)
def _long_date(day: date) -> str:
    """`Thursday 16 October 2025`, once a day: date.strftime costs ~20 us a call."""
    return day.strftime("%A %d %B %Y")


@dataclass(frozen=True, slots=True)
class _Section:
    name: str
    empty: str  #: why the section is empty, "" when it is not
    items: Sequence[DigestItem]
    more: str = ""  #: "N more matched today", "" when all that matched is shown
    more_link: str = ""  #: the archive's page of the day, when the site has a base_url


def _section(section: DigestSection, digest: Digest, base_url: str) -> _Section:
    more = f"{section.more} more matched today" if section.more else ""
    link = f"{base_url}days/{digest.day.isoformat()}.html" if more and base_url else ""
    empty = "" if section.items else "Nothing matched these keywords today."
    return _Section(clean(section.profile.name), empty, section.items, more, link)


# -- a reader's message ------------------------------------------------------------------


def digest_email(
    renderer: EmailRenderer,
    delivery: DeliveryConfig,
    digest: Digest,
    *,
    delivery_id: str,
    to: str,
    links: Links,
    now: datetime,
) -> OutgoingEmail:
    """A reader's digest as an `OutgoingEmail`; the Message-ID comes from the delivery id,
    so a resend after a crash is recognisably the same message."""
    rendered = renderer.render(digest, links)
    mailto = delivery.unsubscribe_mailto
    return OutgoingEmail(
        delivery_id=delivery_id,
        to=to,
        from_addr=delivery.from_addr,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=f"<{delivery_id}@{message_domain(delivery)}>",
        date=now,
        unsubscribe_url=links.unsubscribe,
        unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe" if mailto else "",
    )
