"""The plain data that flows between stages: frozen dataclasses, no behaviour.

Parsers yield `Paper` records; the store keeps them and hands back `Paper` with the
bookkeeping fields (`sources`, `first_seen`, `last_seen`) filled in; the ranker turns
papers and `Profile`s into `DigestItem`s; renderers turn a `Digest` into text. The send
loop claims a `Claim` per reader and day, and records an `Outcome` per attempt. `codec`
is the one place that turns these into rows and JSON and back (`frozen`: digests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

#: Author names a `Paper` keeps (the count says how many there are in all).
MAX_AUTHORS = 10
#: Keywords a `Paper` keeps.
MAX_KEYWORDS = 24


@dataclass(frozen=True, slots=True)
class Paper:
    """One research paper as a source saw it, or as the store keeps it."""

    #: Stable id: the arXiv id when a source gives one, else `text.title_id(title)` (of the
    #: title and, for a feed entry, its DOI, link or id: two papers may share a title).
    id: str
    #: Title as printed by the source (may contain LaTeX such as `Met$^2$Net`).
    title: str
    #: Abstract, white space collapsed; may be empty when the source gave none.
    abstract: str
    #: Publication date shown by the source, if any.
    published: date | None = None
    #: Upvotes on Hugging Face (0 when the source has no such count).
    upvotes: int = 0
    #: Number of authors when the source gives a count or a list.
    authors_count: int | None = None
    #: Organisation shown instead of authors (`deepmind Deepmind` -> `Deepmind`).
    organization: str | None = None
    #: arXiv id when known (`2401.01234`).
    arxiv_id: str | None = None
    #: Link to the paper page when known.
    url: str | None = None
    #: The first authors' names as the source lists them (at most `MAX_AUTHORS`);
    #: `authors_count` is how many there are in all.
    authors: tuple[str, ...] = ()
    #: A one-line summary a source made (Hugging Face's `ai_summary`); "" when none.
    summary: str = ""
    #: Keywords and categories (Hugging Face's `ai_keywords`, arXiv's `cs.CL` ...).
    keywords: tuple[str, ...] = ()
    #: Links: the PDF, the code (and its GitHub stars), the project page, a thumbnail.
    pdf_url: str | None = None
    code_url: str | None = None
    code_stars: int | None = None
    project_url: str | None = None
    thumbnail_url: str | None = None
    #: Comments on the paper's Hugging Face page (`numComments`).
    comments: int | None = None
    #: The authors' comment on arXiv (`23 pages, 8 figures`); "" when none.
    comment: str = ""
    #: The arXiv version the source saw (`v2` -> 2).
    version: int | None = None
    #: The paper's DOI (`10.1145/3576915`), lower-cased, without `https://doi.org/`.
    doi: str | None = None
    #: Names of the sources that listed this paper.
    sources: tuple[str, ...] = ()
    #: When the store first / last saw this paper (None on parser output).
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    #: Parser output only: a revision of a paper (arXiv "replace") updates a known paper
    #: and never adds a new one. Not stored: every stored paper is simply a paper.
    revision: bool = False

    @property
    def has_metadata(self) -> bool:
        """True when the record carries more than a title and an abstract."""
        return (
            self.published is not None
            or self.authors_count is not None
            or self.organization is not None
        )


@dataclass(frozen=True, slots=True)
class SourceWarning:
    """A malformed entry that was skipped or repaired: where it was and what was wrong."""

    origin: str  #: file path or URL
    line: int  #: 1-based line number, 0 when unknown
    message: str
    #: True when the entry was dropped, False when it was kept (perhaps repaired).
    skipped: bool = False

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}" if self.line else self.origin
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Keyword:
    """One term or phrase of a profile, as parsed from what the user typed."""

    text: str  #: as typed, without quotes or weight (`fine-tuning`, `video diffusion`)
    phrase: bool = False  #: typed in double quotes: words must stand together, in order
    weight: float = 1.0  #: `LoRA^2` -> 2.0


@dataclass(frozen=True, slots=True)
class Profile:
    """A named interest profile: what to look for and what to veto.

    Parsed once, where a person typed it (config.toml, the CLI, a web form), and stored
    as it is. A limit left None follows the operator's `[ranking]` defaults
    (`default_max_items`, `default_min_score`), resolved by the ranker, so changing a
    default changes it for every profile that did not set its own.
    """

    name: str
    keywords: tuple[Keyword, ...]
    exclude: tuple[Keyword, ...] = ()
    max_items: int | None = None
    min_score: float | None = None


#: The `Match.fields` of a keyword a paper matched by meaning (the semantic layer: its
#: text is close to the keyword's) rather than by its words.
MEANING = ("meaning",)
#: The `Match.fields` of a keyword a paper matched by related terms alone (terms the
#: stored papers use with the keyword, `rank.related`), not by the keyword's own words.
RELATED = ("related",)
#: The `Match.fields` of a paper that came in or moved up by the reader's ratings
#: (`rank.learn`): its `keyword` is then the title of the liked paper it is like.
RATINGS_FIELD = "ratings"
#: Characters of a liked paper's title a why-line shows.
LIKED_TITLE_CHARS = 60


@dataclass(frozen=True, slots=True)
class Match:
    """Where one keyword matched a paper (or, `by_ratings`, which liked paper it is like)."""

    keyword: str  #: the keyword as the user typed it
    #: "title" and/or "abstract"; `MEANING` when the paper matched it by meaning alone
    fields: tuple[str, ...]
    #: The words of the paper that matched, as written there (`text-to-speech` for the
    #: keyword `TTS`), title first, each spelling once; () when unknown (older records).
    words: tuple[str, ...] = ()
    #: True when only some words of a multi-word keyword matched (not all together).
    partly: bool = False

    @property
    def by_ratings(self) -> bool:
        """True when this is not a keyword but the reader's ratings: a liked paper."""
        return self.fields == (RATINGS_FIELD,)

    @property
    def liked(self) -> str:
        """The liked paper's title as a why-line shows it (shortened), for `by_ratings`."""
        title = " ".join(self.keyword.split())
        if len(title) <= LIKED_TITLE_CHARS:
            return title
        return title[: LIKED_TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"

    @property
    def shown(self) -> tuple[str, ...]:
        """The words a why-line shows: three of `words`, or the keyword when none known."""
        return self.words[:3] or (self.keyword,)

    @property
    def by_meaning(self) -> bool:
        """True when the paper matched this keyword by meaning, not by its words."""
        return self.fields == MEANING

    @property
    def by_related(self) -> bool:
        """True when the paper matched this keyword by related terms, not its own words."""
        return self.fields == RELATED

    @property
    def names_keyword(self) -> bool:
        """True when a shown word is the keyword itself (case, hyphens and spaces aside),
        so the why-line need not name the keyword as well."""
        typed = _letters(self.keyword)
        return any(_letters(w) == typed for w in self.shown)


def _letters(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())


@dataclass(frozen=True, slots=True)
class DigestItem:
    """A paper picked for a profile, with its score and why it was picked."""

    paper: Paper
    score: float  #: normalised, comparable across profiles (see rank.score)
    matches: tuple[Match, ...] = ()
    #: Short abstract excerpts around the matches, plain text.
    snippets: tuple[str, ...] = ()

    @property
    def matched(self) -> list[str]:
        """The keywords that matched, as typed (not the ratings that lifted it)."""
        return [m.keyword for m in self.matches if not m.by_ratings]

    @property
    def why(self) -> str:
        """One line: the words that matched, where, and for which keyword; the keywords it
        is close to by meaning alone; and the liked paper when the reader's ratings brought
        it in or moved it up."""
        if not self.matches:
            return "popular today"
        parts = []
        for m in self.matches:
            if m.by_ratings or m.by_meaning:
                continue
            label = f"{'partly ' if m.partly else ''}{', '.join(m.shown)} ({' + '.join(m.fields)})"
            parts.append(label if m.names_keyword else f"{label} for {m.keyword}")
        close = [m.keyword for m in self.matches if m.by_meaning]
        liked = [m.liked for m in self.matches if m.by_ratings]
        return why_line(parts, close, liked)

    @property
    def by_meaning(self) -> bool:
        """True when the paper came in by meaning: a keyword matched it by meaning and
        none by its words (the reader's ratings aside)."""
        kinds = [m.by_meaning for m in self.matches if not m.by_ratings]
        return bool(kinds) and all(kinds)


def why_line(lexical: list[str], close: list[str], liked: list[str]) -> str:
    """A why-line from its parts, each already escaped for the output format: the
    keywords matched by their words (`lexical`), those the paper is close to by meaning
    alone (`close`), and the liked papers it is like (`liked`, shortened titles)."""
    out = [f"matches {'; '.join(lexical)}"] if lexical else []
    if close:
        said = f"close in meaning to {', '.join(close)}"
        out.append(said if lexical else f"by meaning: {said}")
    out += [f"by your ratings (like: {title})" for title in liked]
    return "; ".join(out)


@dataclass(frozen=True, slots=True)
class DigestSection:
    """The part of a digest that belongs to one profile."""

    profile: Profile
    items: tuple[DigestItem, ...]
    #: Papers that matched too but did not fit (max_items): "N more matched today".
    more: int = 0


@dataclass(frozen=True, slots=True)
class Digest:
    """What one reader gets on one day: a section per profile."""

    day: date
    title: str
    sections: tuple[DigestSection, ...]
    papers_considered: int = 0
    #: Why the digest may be thin: failed sources, no new papers (shown to the reader).
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def item_count(self) -> int:
        return sum(len(s.items) for s in self.sections)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A reader of the daily email."""

    id: int
    email: str  #: normalised address; one row per address
    #: "pending" (not confirmed yet), "confirmed", "paused" (confirmed, no digests for
    #: now: the manage page), "unsubscribed"
    status: str
    timezone: str  #: IANA name, e.g. "Europe/Berlin"
    send_at: str  #: "HH:MM" local time
    frequency: str  #: "daily" | "weekly"
    notify_empty: bool  #: send a "nothing today" note when nothing matched
    created_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    profiles: tuple[Profile, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """One digest for one subscriber and day: claimed before any backend is called."""

    id: str  #: opaque (a hash), carried in headers; no personal data
    subscriber_id: int
    email: str
    digest_date: date
    state: str  #: "pending" -> "sent" | "failed" | "retry"
    attempts: int
    next_attempt_at: datetime | None
    reason: str
    window_start: datetime | None  #: papers first seen after this ...
    window_end: datetime  #: ... and up to this
    content: str  #: the digest frozen at claim time (JSON), so a resend is the same digest
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    #: The newest paper row the digest considered: the next one starts after it.
    papers_upto: int | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A digest claimed for one reader and day, before any backend is called.

    Written together with the reader's sent-ledger rows (`paper_ids`) in one transaction,
    so a run killed at any point resends this very content, never a different digest.
    """

    delivery_id: str
    subscriber_id: int
    digest_date: date
    window_start: datetime | None  #: papers that arrived after this ...
    window_end: datetime  #: ... and up to this
    content: str  #: the frozen digest (`frozen.freeze_compact`)
    paper_ids: tuple[str, ...]  #: what goes into the sent-ledger
    #: The newest paper row the digest considered: the next one starts after it.
    papers_upto: int | None = None
    #: The shared item records `content` refers to ({key: JSON}), stored once for all.
    records: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt to hand a delivery to a backend."""

    delivery_id: str
    state: str  #: "sent" | "retry" | "failed"
    reason: str = ""
    next_attempt_at: datetime | None = None  #: when a retry is due


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """What the store remembers of a URL source: its URL and validators (ETag ...)."""

    url: str
    state: str  #: `sources.fetch.FetchState` as JSON


@dataclass(frozen=True, slots=True)
class LastDigest:
    """What the planner needs of a reader's previous digest (not its content)."""

    subscriber_id: int
    digest_date: date
    window_end: datetime
    #: The newest paper row it considered; None for digests from before rows were kept.
    papers_upto: int | None


#: The two answers a reader can give about a paper, as links and the CLI spell them.
VOTES = {"like": 1, "dislike": -1}


@dataclass(frozen=True, slots=True)
class Rating:
    """A reader's "more like this" (+1) or "not for me" (-1) about one paper: the signal
    the ranker learns a reader's taste from. One per reader and paper (the latest)."""

    subscriber_id: int
    paper_id: str
    vote: int  #: +1 "more like this", -1 "not for me"
    rated_at: datetime
    via: str  #: where it was given: "email", "manage", "cli"
    title: str = ""  #: the paper's title, for lists (not part of the rating)

    @property
    def label(self) -> str:
        """The vote as a link spells it: "like" or "dislike"."""
        return "like" if self.vote > 0 else "dislike"
