"""Each day's picks: every profile ranks the papers first seen that day.

Ranking is the expensive part of publishing (the analyzer reads every paper), so each
day's result is cached in the manifest under a key that covers everything `rank` reads:
the day's papers, the profiles, the settings and the synonyms. A day whose key is
unchanged is not ranked again (`days` builds the days, in worker processes when there
are many of them to rank: a whole archive from scratch).

Picks also carry the highlight spans of their title and snippets, computed here with the
ranker's own analyzer (so `LoRA` highlights "low-rank adaptation"), once per day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from digest.model import DigestItem, Match, Paper, Profile
from digest.rank.settings import RankSettings

#: The ranker the pipeline hands in (`rank.rank`): papers, profiles, now, settings,
#: synonyms -> items per profile. A module-level function, so worker processes get it.
RankFn = Callable[..., list[tuple[DigestItem, ...]]]

#: Bump when the cached pick format or the way picks are made changes.
PICKS_VERSION = 2  # 2: matches carry the words that matched and `partly`

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Pick:
    """One paper a profile picked on one day, with what to highlight."""

    day: date
    profile: int  #: index into the config's profiles
    paper_id: str
    score: float
    matches: tuple[Match, ...]
    snippets: tuple[str, ...]
    title_spans: tuple[Span, ...] = ()
    snippet_spans: tuple[tuple[Span, ...], ...] = ()

    @property
    def why(self) -> str:
        """The same one-line explanation as `DigestItem.why`."""
        return DigestItem(Paper("", "", ""), self.score, self.matches).why


def ranking_basis(
    profiles: Sequence[Profile],
    settings: RankSettings,
    synonyms: Mapping | None,
    related: str = "",
) -> str:
    """A hash of everything besides the papers that decides a day's picks: the settings
    but those only ratings read (`RankSettings.without_ratings`: the archive's profiles
    have none). `related`: which related-terms table the ranker reads
    (`bridges.related_stamp`; "" when none)."""
    parts: tuple = (
        PICKS_VERSION,
        tuple(profiles),
        settings.without_ratings(),
        sorted((synonyms or {}).items()),
    )
    text = repr((*parts, related) if related else parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def day_key(basis: str, day: date, fingerprints: Sequence[str]) -> str:
    """The cache key of one day's picks."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{basis}|{day.isoformat()}|".encode())
    for fp in sorted(fingerprints):
        h.update(fp.encode())
    return h.hexdigest()


def end_of_day(day: date) -> datetime:
    """The `now` a day is ranked at: its last second, UTC."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _spans(
    text: str, profile: Profile, keywords: Sequence[str], synonyms: Mapping | None
) -> tuple[Span, ...]:
    """Where the keywords that matched this paper stand in `text` (rank.match_spans on the
    profile narrowed to those keywords; its analyzer and features are cached)."""
    matched = tuple(k for k in profile.keywords if k.text in keywords)
    if not matched or not text:
        return ()
    narrowed = Profile(profile.name, matched, profile.exclude, profile.max_items, profile.min_score)
    # The ranker's analyzer (numpy, scipy) loads when a day is ranked, not at start-up.
    from digest.rank.explain import match_spans

    return tuple(match_spans(text, narrowed, synonyms))


def rank_days(
    days: Sequence[tuple[date, Sequence[Paper]]],
    profiles: Sequence[Profile],
    settings: RankSettings,
    synonyms: Mapping | None,
    ranker: RankFn,
) -> dict[date, list[Pick]]:
    """Rank each day's papers for all profiles with `ranker`; pure (no I/O, no clock)."""
    out: dict[date, list[Pick]] = {}
    for day, papers in days:
        picks: list[Pick] = []
        ranked = ranker(papers, profiles, end_of_day(day), settings, synonyms=synonyms)
        for index, items in enumerate(ranked):
            for item in items:
                keywords = item.matched
                picks.append(
                    Pick(
                        day=day,
                        profile=index,
                        paper_id=item.paper.id,
                        score=item.score,
                        matches=item.matches,
                        snippets=item.snippets,
                        title_spans=_spans(item.paper.title, profiles[index], keywords, synonyms),
                        snippet_spans=tuple(
                            _spans(s, profiles[index], keywords, synonyms) for s in item.snippets
                        ),
                    )
                )
        out[day] = picks
    return out


def pick_to_json(pick: Pick) -> list:
    """A pick as a compact JSON list (the manifest's cache form; the day is the key)."""
    return [
        pick.profile,
        pick.paper_id,
        pick.score,
        [[m.keyword, list(m.fields), list(m.words), m.partly] for m in pick.matches],
        list(pick.snippets),
        [list(s) for s in pick.title_spans],
        [[list(s) for s in spans] for spans in pick.snippet_spans],
    ]


def pick_from_json(day: date, raw: list) -> Pick:
    """The inverse of `pick_to_json` (list comprehensions, not generators: a year's
    publish reads some ten thousand picks back every time)."""
    profile, paper_id, score, matches, snippets, title_spans, snippet_spans = raw
    return Pick(
        day=day,
        profile=int(profile),
        paper_id=str(paper_id),
        score=float(score),
        matches=tuple([Match(str(k), tuple(f), tuple(w), bool(p)) for k, f, w, p in matches]),
        snippets=tuple(snippets),
        title_spans=tuple([(int(s), int(e)) for s, e in title_spans]),
        snippet_spans=tuple(
            [tuple([(int(s), int(e)) for s, e in spans]) for spans in snippet_spans]
        ),
    )
