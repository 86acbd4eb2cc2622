"""What the site's templates see: the archive as plain data, and per-page view records.

`Archive` is everything the pages are made from: every published day's count and picks,
and the papers of the days this publish read (`day_papers`; the other days' pages are
not made again, so their papers are not needed, except display copies of their picked
papers, which index, profile pages and feeds show). The view record `ItemView`
carries links already made relative to the page that shows them, and titles split into
highlight segments. Templates only format.

Which papers get a permalink (`papers/<id>.html`): those a profile picked, and those
with no page elsewhere (no source URL, no arXiv id), so every paper can be read in full
somewhere. The rest are listed on their day page, with the link to their source and an
anchor (`#p-<id>`) that search results point at: a year at 2,000 papers a day is then
some ten thousand permalinks, not 730,000 files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from digest.model import Match, Paper
from digest.publish.names import day_of, paper_file, plain
from digest.publish.picks import Pick, Span
from digest.render import safe_url, sentences
from digest.render.items import ARXIV_ID, item_links

Segment = tuple[str, bool]  #: (text, highlighted)


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """A configured profile as the site shows it."""

    name: str
    slug: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    @property
    def page(self) -> str:
        return f"profiles/{self.slug}.html"

    @property
    def feed(self) -> str:
        return f"feeds/{self.slug}.atom"


@dataclass(slots=True)
class Archive:
    """The site's data: every published day (newest first), its count and picks, and the
    papers of the days read this time."""

    title: str
    base_url: str
    profiles: list[ProfileInfo]
    #: every published day, newest first
    days: list[date]
    counts: dict[date, int]
    day_keys: dict[date, str]
    #: each day's picks (site-wide pages: read from the saved states when first asked for)
    picks: Mapping[date, list[Pick]]
    #: the papers of the days read, and display copies of the picked papers of the days
    #: whose picks were asked for
    papers: dict[str, Paper]
    #: the days read this time -> their papers (other days are not rendered again)
    day_papers: dict[date, list[Paper]]
    #: fingerprints of the papers of the days read
    fingerprints: dict[str, str]
    recent_days: int = 14
    feed_entries: int = 50
    #: `digest serve`'s subscribe page ([delivery] public_url + "subscribe"), "" for none
    subscribe_url: str = ""
    #: paper id -> its picks (filled by `index_picks`)
    picks_of_paper: dict[str, list[Pick]] = field(default_factory=dict)
    #: day -> how many picks each profile has, where known without reading its picks
    pick_counts: dict[date, tuple[int, ...]] = field(default_factory=dict)
    #: day -> ids of its papers with a permalink (filled by `permalinked`)
    permalinks: dict[date, set[str]] = field(default_factory=dict)
    #: paper id -> what its day page and its search row both show (`day_listings`)
    listings: dict[str, Listing] = field(default_factory=dict)
    #: the days whose papers are in `listings`
    listed: set[date] = field(default_factory=set)

    def index_picks(self) -> None:
        self.picks_of_paper = {}
        for picks in self.picks.values():
            for pick in picks:
                self.picks_of_paper.setdefault(pick.paper_id, []).append(pick)

    def day_of_paper(self, paper: Paper) -> date:
        """The day a paper belongs to (its `first_seen`, UTC)."""
        assert paper.first_seen is not None  # stored papers always have it
        return day_of(paper.first_seen)

    def picks_per_profile(self, day: date) -> tuple[int, ...]:
        """How many picks each profile has on `day` (saved counts: no picks are read)."""
        got = self.pick_counts.get(day)
        if got is None:
            counts = [0] * len(self.profiles)
            for pick in self.picks.get(day, []):
                counts[pick.profile] += 1
            got = tuple(counts)
        return got

    def profile_picks(self, index: int, days: list[date] | None = None) -> list[Pick]:
        """A profile's picks across `days` (all days when None): newest day first, best
        first within a day."""
        chosen = self.days if days is None else days
        return [p for day in chosen for p in self.picks.get(day, []) if p.profile == index]

    def permalinked(self, day: date) -> set[str]:
        """Ids of the papers of a day read this time that get a permalink page."""
        if day not in self.permalinks:
            picked = {p.paper_id for p in self.picks.get(day, [])}
            self.permalinks[day] = {
                p.id for p in self.day_papers[day] if p.id in picked or not has_page(p)
            }
        return self.permalinks[day]

    def day_listings(self, day: date) -> dict[str, Listing]:
        """The listings of a day read this time (`listings`, made when a page that shows
        them is rendered: the days a publish reads again are mostly not)."""
        if day not in self.listed:
            self.listings.update({p.id: Listing.of(p) for p in self.day_papers[day]})
            self.listed.add(day)
        return self.listings


@dataclass(frozen=True, slots=True)
class Listing:
    """A paper as its day page and its search row list it (each made once a paper: a
    year is 730,000 of them)."""

    anchor: str  #: `paper_anchor`
    title: str  #: `plain(title)`
    links: list[tuple[str, str]]  #: `readable_links`

    @classmethod
    def of(cls, paper: Paper) -> Listing:
        return cls(paper_anchor(paper.id), plain(paper.title), readable_links(paper))


def display_copy(paper: Paper) -> list:
    """What the pages of other days show of a picked paper, as compact JSON: title, meta,
    first seen, and the abstract cut to the sentences a feed entry shows (`sentences`
    gives the same on it again). A year holds some ten thousand of these, read on every
    publish: a short list decodes several times faster than a whole paper's JSON."""
    return [
        paper.id,
        paper.title,
        sentences(paper.abstract),
        paper.organization,
        paper.authors_count,
        paper.published.isoformat() if paper.published else None,
        paper.upvotes,
        paper.first_seen.isoformat() if paper.first_seen else None,
    ]


def from_display_copy(raw: list) -> Paper:
    """The inverse of `display_copy` (fields it does not keep are left empty)."""
    pid, title, abstract, organization, authors, published, upvotes, seen = raw
    return Paper(
        id=str(pid),
        title=str(title),
        abstract=str(abstract),
        organization=organization,
        authors_count=authors,
        published=date.fromisoformat(published) if published else None,
        upvotes=int(upvotes),
        first_seen=datetime.fromisoformat(seen) if seen else None,
    )


@dataclass(frozen=True, slots=True)
class ItemView:
    """A pick as a list item: link, highlighted title, why, highlighted snippets."""

    href: str
    paper: Paper
    score: float
    title: tuple[Segment, ...]
    matches: tuple[Match, ...]
    snippets: tuple[tuple[Segment, ...], ...]
    profile: ProfileInfo
    day: date
    day_href: str


def segments(text: str, spans: tuple[Span, ...]) -> tuple[Segment, ...]:
    """`text` cut into (piece, highlighted) at `spans`; pieces are cleaned but keep their
    edge spaces, so highlighted words stay separated from their neighbours."""
    out: list[Segment] = []
    at = 0
    for start, end in spans:
        if start < at or end > len(text) or start >= end:
            continue  # a stale or overlapping span: skip it rather than garble the text
        if start > at:
            out.append((plain(text[at:start]), False))
        out.append((plain(text[start:end]), True))
        at = end
    if at < len(text):
        out.append((plain(text[at:]), False))
    if out:  # strip the ends of the whole, not of each piece
        out[0] = (out[0][0].lstrip(), out[0][1])
        out[-1] = (out[-1][0].rstrip(), out[-1][1])
    return tuple(s for s in out if s[0])


def paper_href(root: str, paper_id: str) -> str:
    return f"{root}papers/{paper_file(paper_id)}"


def paper_anchor(paper_id: str) -> str:
    """The id of a paper's entry on its day page (`p-` and its file name's stem)."""
    return "p-" + paper_file(paper_id).removesuffix(".html")


def day_href(root: str, day: date) -> str:
    return f"{root}days/{day.isoformat()}.html"


def item_view(archive: Archive, pick: Pick, root: str) -> ItemView:
    paper = archive.papers[pick.paper_id]
    return ItemView(
        href=paper_href(root, pick.paper_id),
        paper=paper,
        score=pick.score,
        title=segments(paper.title, pick.title_spans),
        matches=pick.matches,
        snippets=tuple(
            segments(s, spans)
            for s, spans in zip(
                pick.snippets,
                pick.snippet_spans or tuple(() for _ in pick.snippets),
                strict=False,
            )
        ),
        profile=archive.profiles[pick.profile],
        day=pick.day,
        day_href=day_href(root, pick.day),
    )


def external_links(paper: Paper) -> list[tuple[str, str]]:
    """(label, url) of the paper elsewhere, for its permalink: `render.item_links` (its
    page, arXiv, PDF, code, project page, DOI; each place once, http(s) only) and its
    Hugging Face page when it has an arXiv id."""
    links = list(item_links(paper))
    hf = f"https://huggingface.co/papers/{paper.arxiv_id}"
    if paper.arxiv_id and ARXIV_ID.fullmatch(paper.arxiv_id) and hf not in dict(links).values():
        links.append(("Hugging Face", hf))
    return links


def has_page(paper: Paper) -> bool:
    """Whether the paper has a page elsewhere: `readable_links(paper)` is not empty. The
    arXiv id first: a pattern match, where the url's check cleans it (asked of every
    paper of a day)."""
    if paper.arxiv_id and ARXIV_ID.fullmatch(paper.arxiv_id):
        return True
    return bool(paper.url and safe_url(paper.url))


def readable_links(paper: Paper) -> list[tuple[str, str]]:
    """`external_links` that pass `safe_url` (a `javascript:` url is no page to read).
    Called for every paper of a day: only the paper's own url needs the check, the
    others are made from an id of a checked shape."""
    url = safe_url(paper.url) if paper.url else ""
    links = [("Paper page", url)] if url else []
    if paper.arxiv_id and ARXIV_ID.fullmatch(paper.arxiv_id):
        links.append(("arXiv", f"https://arxiv.org/abs/{paper.arxiv_id}"))
        links.append(("Hugging Face", f"https://huggingface.co/papers/{paper.arxiv_id}"))
    return links
