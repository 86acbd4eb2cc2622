"""Abstract snippets: an abstract cut into sentences with where the wanted features
stand (`AbstractMap`, by the ranking's own analyzer through a span finder that remembers
spellings), and the sentences that show the most matched keywords (`snippets_for`).
`explain` builds the why-lines from them, with the memo a ranking index shares.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from digest.model import Match
from digest.rank.analyzer import _JOINING_GAP, _RAW_WORD, Analyzer, _split_raw
from digest.rank.settings import RankSettings

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def _trim(text: str, start: int, end: int, limit: int) -> str:
    """An excerpt of at most ~limit characters around [start, end), on word boundaries."""
    if len(text) <= limit:
        return text
    lo = max(0, min(start - limit // 4, len(text) - limit))
    hi = min(len(text), lo + limit)
    if lo > 0:
        cut = text.find(" ", lo)
        lo = cut + 1 if 0 <= cut < start else lo
    if hi < len(text):
        cut = text.rfind(" ", max(end, lo), hi)
        hi = cut if cut > 0 else hi
    return ("…" if lo > 0 else "") + text[lo:hi].strip() + ("…" if hi < len(text) else "")


#: Spellings and pairs a `_SpanFinder` remembers before it starts over.
FINDER_LIMIT = 250_000


class _SpanFinder:
    """`Analyzer.feature_spans(text, wanted)` of one analyzer and one `wanted` set, the
    same spans in the same order, for explanations (a few dozen wanted features; most
    words have none of them): each written word's sub-words and their wanted features,
    and each joined pair's, are worked out once and remembered, instead of filtering
    every feature of every word of every text. The words and their joins are the
    analyzer's own (`_split_raw`, `_JOINING_GAP`), so are the features (its memoised
    `_word_features`, `_solid` and synonym `scan`)."""

    def __init__(self, analyzer: Analyzer, wanted: frozenset[str]) -> None:
        self.analyzer, self.wanted = analyzer, wanted
        self._words: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
        self._pairs: dict[tuple[str, str], tuple[str, ...]] = {}

    def _word(self, raw: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        wanted, features = self.wanted, self.analyzer._word_features
        got = tuple(
            (word, tuple(f for f in features(cased, word) if f in wanted))
            for word, cased in _split_raw(raw)
        )
        if len(self._words) >= FINDER_LIMIT:
            self._words.clear()
        self._words[raw] = got
        return got

    def _pair(self, prev: str, word: str) -> tuple[str, ...]:
        got = tuple(f for f in self.analyzer._solid(prev + word) if f in self.wanted)
        if len(self._pairs) >= FINDER_LIMIT:
            self._pairs.clear()
        self._pairs[(prev, word)] = got
        return got

    def spans(self, text: str) -> list[tuple[str, int, int]]:
        """(feature, start, end) of the wanted features of `text`, as `feature_spans`."""
        out: list[tuple[str, int, int]] = []
        append = out.append
        words: list[str] = []
        joined: list[bool] = []
        starts: list[int] = []
        ends: list[int] = []
        known, pairs, gap = self._words, self._pairs, _JOINING_GAP.fullmatch
        prev_end = -1
        prev = ""
        for m in _RAW_WORD.finditer(text):
            start, end = m.span()
            join = prev_end >= 0 and gap(text, prev_end, start) is not None
            raw = m.group()
            subs = known.get(raw)
            if subs is None:
                subs = self._word(raw)
            for word, feats in subs:
                for f in feats:
                    append((f, start, end))
                if join and words:
                    got = pairs.get((prev, word))
                    if got is None:
                        got = self._pair(prev, word)
                    for f in got:
                        append((f, starts[-1], end))
                words.append(word)
                joined.append(join)
                starts.append(start)
                ends.append(end)
                prev = word
                join = True  # later pieces of one written word stand together
            prev_end = end
        wanted = self.wanted
        out.extend(
            (f, starts[i], ends[j])
            for f, i, j in self.analyzer.synonyms.scan(words, joined)
            if f in wanted
        )
        return out


@functools.lru_cache(maxsize=16)
def span_finder(analyzer: Analyzer, wanted: frozenset[str]) -> _SpanFinder:
    """The finder of an analyzer and a wanted set, kept across calls (a publish ranks a
    year of days with one set: each spelling is worked out once)."""
    return _SpanFinder(analyzer, wanted)


@dataclass(frozen=True, slots=True)
class AbstractMap:
    """An abstract cut into sentences, with where each feature occurs (sentence, span)."""

    text: str
    bounds: list[tuple[int, int]]
    where: dict[str, list[tuple[int, int, int]]]

    @classmethod
    def build(cls, text: str, analyzer: Analyzer, wanted: AbstractSet[str]) -> AbstractMap:
        bounds, pos = [], 0
        for part in _SENTENCE.split(text):
            start = text.find(part, pos)
            bounds.append((start, start + len(part)))
            pos = start + len(part)
        starts = [a for a, _ in bounds]
        where: dict[str, list[tuple[int, int, int]]] = {}
        # none wanted: bounds only
        spans = span_finder(analyzer, frozenset(wanted)).spans(text) if wanted else ()
        for feature, start, end in spans:
            sentence = max(bisect.bisect_right(starts, start) - 1, 0)
            where.setdefault(feature, []).append((sentence, start, end))
        return cls(text, bounds, where)


@dataclass
class ExplainMemo:
    """What `explain` learns about papers, kept across calls on one index: each abstract's
    spans of the `wanted` features, and the snippets of (paper, matched keywords)."""

    wanted: frozenset[str]
    maps: dict[int, AbstractMap] = field(default_factory=dict)
    titles: dict[int, AbstractMap] = field(default_factory=dict)
    shown: dict[tuple[object, ...], tuple[str, ...]] = field(default_factory=dict)
    #: One matches tuple for each paper and way to match it, keyed by (column, (keyword,
    #: quoted, in title, in abstract), ...): readers who match a paper the same way share
    #: the object (so renderers and freezers cache by identity: the matches decide the
    #: snippets too), and no Match is made twice.
    matches: dict[tuple[object, ...], tuple[Match, ...]] = field(default_factory=dict)


#: Ways to match a memo keeps before it starts over (a day's distinct ones are fewer).
MATCHES_LIMIT = 200_000


def snippets_for(
    abstract: AbstractMap, features: Sequence[set[str]], settings: RankSettings
) -> tuple[str, ...]:
    """Up to `settings.snippets` abstract sentences that show the most matched keywords.

    Sentences are picked by how many distinct keywords they show (ties: earlier first),
    each further one only if it shows a keyword not shown yet; they are returned in text
    order, trimmed to `snippet_chars` around their matches. With no match in the abstract
    (a title-only match) the opening sentence stands in.
    """
    if not abstract.text or settings.snippets <= 0:
        return ()
    hits: dict[int, tuple[set[int], int, int]] = {}
    for k, feats in enumerate(features):
        for feature in feats:
            for sentence, start, end in abstract.where.get(feature, ()):
                ks, first, last = hits.get(sentence, (set(), start, end))
                ks.add(k)
                hits[sentence] = (ks, min(first, start), max(last, end))
    chosen: list[int] = []
    covered: set[int] = set()
    for i in sorted(hits, key=lambda i: (-len(hits[i][0]), i)):
        if len(chosen) >= settings.snippets:
            break
        if chosen and not hits[i][0] - covered:
            continue
        chosen.append(i)
        covered |= hits[i][0]
    text, limit = abstract.text, settings.snippet_chars
    if not chosen:
        a, b = abstract.bounds[0]
        return (_trim(text[a:b], 0, 0, limit),)
    out = []
    for i in sorted(chosen):
        a, b = abstract.bounds[i]
        out.append(_trim(text[a:b], hits[i][1] - a, hits[i][2] - a, limit))
    return tuple(out)
