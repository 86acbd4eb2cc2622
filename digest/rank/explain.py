"""Why a paper was picked: matched keywords, where they matched, and abstract snippets.

`match_spans` gives templates the character spans to highlight, computed by the same
analyzer as the ranking (so `LoRA` highlights "low-rank adaptation" too).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from digest.model import MEANING, RELATED, DigestItem, Keyword, Match, Paper, Profile
from digest.rank.analyzer import (
    _JOINING_GAP,
    _RAW_WORD,
    Analyzer,
    SynonymsKey,
    _split_raw,
    analyzer_for,
    analyzer_for_key,
    synonyms_key,
)
from digest.rank.index import PaperIndex
from digest.rank.query import KeywordPlan, Unit, compile_keyword
from digest.rank.score import Compiled, Selections, lookup
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
def _span_finder(analyzer: Analyzer, wanted: frozenset[str]) -> _SpanFinder:
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
        spans = _span_finder(analyzer, frozenset(wanted)).spans(text) if wanted else ()
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


def explain(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    compiled: Compiled,
    chosen: Selections,
    scores: sp.csr_matrix,
    index: PaperIndex,
    analyzer: Analyzer,
    settings: RankSettings,
    memo: ExplainMemo | None = None,
    meaning: sp.csr_matrix | None = None,
    related: sp.csr_matrix | None = None,
) -> list[tuple[DigestItem, ...]]:
    """Turn selections into DigestItems: matched keywords, where, and snippets.

    `memo` carries the abstracts' spans and the snippets from one call to the next (pages
    of readers ranked on one index); without it they last one call. `meaning`: the
    semantic layer's evidence per plan and paper (`rank.dense`); a keyword that did not
    match by its words but has some becomes a `Match` with fields ("meaning",).
    `related`: 1 where a keyword matched by related terms alone (`rank.related`): its
    `Match` has fields ("related",) and the related words the paper holds.
    """
    rows, cols = [], []
    for i in range(len(chosen)):
        papers_i = chosen.papers[chosen.of(i)]
        for pid in compiled.keyword_plans[i]:
            rows.append(np.full(len(papers_i), max(pid, 0)))
            cols.append(papers_i)
    if rows:
        all_rows, all_cols = np.concatenate(rows), np.concatenate(cols)
    else:
        all_rows = all_cols = np.zeros(0, dtype=np.int64)
    vocab = index.vocab
    feats = [
        {vocab[f] for f in plan.all_features() if f in vocab} if plan else set()
        for plan in compiled.plans
    ]
    any_feature = sp.csr_matrix(
        (
            np.ones(sum(map(len, feats)), np.float32),
            ([k for k, fs in enumerate(feats) for _ in fs], [f for fs in feats for f in fs]),
        ),
        shape=(len(feats), len(vocab)),
    )
    # As lists: the loop below reads them one by one (a numpy scalar costs ~10x more).
    got = (lookup(scores, all_rows, all_cols) > 0).tolist()
    in_t = (lookup((any_feature @ index.in_title).tocsr(), all_rows, all_cols) > 0).tolist()
    in_a = (lookup((any_feature @ index.in_abstract).tocsr(), all_rows, all_cols) > 0).tolist()
    plan_features = [plan.all_features() if plan else set() for plan in compiled.plans]
    if memo is None:
        bridges = [{g for g, _ in plan.related} for plan in compiled.plans if plan]
        memo = ExplainMemo(frozenset().union(*plan_features, *bridges))
    if len(memo.matches) > MATCHES_LIMIT:
        memo.matches.clear()
    by_meaning = (
        (lookup(meaning, all_rows, all_cols) > 0).tolist()
        if meaning is not None and meaning.nnz
        else None
    )
    by_related = (
        (lookup(related, all_rows, all_cols) > 0).tolist()
        if related is not None and related.nnz
        else None
    )
    flags = (got, in_t, in_a)
    out: list[tuple[DigestItem, ...]] = []
    at = 0
    for i, profile in enumerate(profiles):
        items = []
        pids = compiled.keyword_plans[i]
        where = chosen.of(i)
        sel_papers, sel_scores = chosen.papers[where].tolist(), chosen.score[where].tolist()
        n = len(sel_papers)
        for j, col in enumerate(sel_papers):
            body = _body(
                papers[col], col, profile, pids, n, at + j, flags, compiled.plans,
                plan_features, memo, analyzer, settings, by_meaning, by_related,
            )  # fmt: skip
            items.append(DigestItem(papers[col], round(sel_scores[j], 6), *body))
        at += n * len(pids)
        out.append(tuple(items))
    return out


def _body(
    paper: Paper,
    col: int,
    profile: Profile,
    pids: Sequence[int],
    n: int,
    first: int,
    flags: tuple[list[bool], list[bool], list[bool]],
    plans: Sequence[KeywordPlan | None],
    plan_features: list[set[str]],
    memo: ExplainMemo,
    analyzer: Analyzer,
    settings: RankSettings,
    by_meaning: list[bool] | None = None,
    by_related: list[bool] | None = None,
) -> tuple[tuple[Match, ...], tuple[str, ...]]:
    """One item's matches (which keywords, where) and snippets; `first` is its place in
    the `flags` (matched, in title, in abstract) of its profile's first keyword, and in
    `by_meaning` (the semantic layer's evidence, when on)."""
    got, in_t, in_a = flags
    ways, matched, names, in_abstract = [], [], [], False
    close: list[str] = []  # keywords the paper is close to by meaning alone
    bridged: list[tuple[str, int]] = []  # keywords it matched by related terms alone
    for k, (kw, pid) in enumerate(zip(profile.keywords, pids, strict=True)):
        x = first + k * n
        if pid < 0:
            continue
        if not got[x]:
            if by_meaning is not None and by_meaning[x]:
                close.append(kw.text)
            continue
        if by_related is not None and by_related[x]:
            bridged.append((kw.text, pid))
            continue
        ways.append((kw.text, kw.phrase, in_t[x], in_a[x]))
        matched.append(pid)
        names.append((kw.text, kw.phrase))
        in_abstract = in_abstract or in_a[x]
    key_of_ways = (
        col,
        *ways,
        *(("meaning", text) for text in close),
        *(("related", text) for text, _ in bridged),
    )
    matches = memo.matches.get(key_of_ways)
    if matches is None:
        title_map = memo.titles.get(col)
        if title_map is None:
            title_map = memo.titles[col] = AbstractMap.build(paper.title, analyzer, memo.wanted)
        abstract_map = memo.maps.get(col)
        if abstract_map is None and (in_abstract or bridged):
            abstract_map = memo.maps[col] = AbstractMap.build(
                paper.abstract or "", analyzer, memo.wanted
            )
        maps = (title_map, abstract_map) if abstract_map is not None else (title_map,)
        matches = memo.matches[key_of_ways] = tuple(
            Match(text, _FIELDS[(title, abstract)], *evidence(plans[pid], maps))
            for (text, _, title, abstract), pid in zip(ways, matched, strict=True)
        ) + tuple(Match(text, MEANING) for text in close)
        matches += tuple(
            Match(text, RELATED, related_words(plans[pid], maps)) for text, pid in bridged
        )
    # Readers who share keywords share the paper's snippets; a paper none of whose matched
    # keywords is in its abstract shows its opening (no need to find spans).
    key = (col, *names) if in_abstract else (col,)
    snippets = memo.shown.get(key) if settings.snippets > 0 else ()
    if snippets is None:
        text = paper.abstract or ""
        if not in_abstract:
            snippets = snippets_for(AbstractMap.build(text, analyzer, set()), [], settings)
        else:
            if col not in memo.maps:
                memo.maps[col] = AbstractMap.build(text, analyzer, memo.wanted)
            found = [plan_features[pid] for pid in matched]
            snippets = snippets_for(memo.maps[col], found, settings)
        memo.shown[key] = snippets
    return matches, snippets


#: Spellings of the matched words a Match keeps (the why-line shows three).
MAX_WORDS = 6


def evidence(plan: KeywordPlan | None, maps: Sequence[AbstractMap]) -> tuple[tuple[str, ...], bool]:
    """The words that matched `plan` as the `maps` (title, abstract) write them, and
    whether the match is partial: only some words of an unquoted multi-word keyword, not
    all of them together (the phrase the ranker credits most).

    A span inside a longer one is the longer one's (`low-rank adaptation`, not
    `adaptation`); each spelling counts once, case, hyphens and spaces aside; title words
    come first. When all the words matched together, their single words are not listed.
    """
    if plan is None:
        return (), False
    features = plan.all_features()
    present = {f for amap in maps for f in features & amap.where.keys()}
    phrase = [f for f, _ in plan.phrase.features]
    whole = (
        all(f in present for f in plan.need_all)
        if plan.need_all
        else any(f in present for f in phrase)
    )
    if whole and plan.bag:  # the words together are the match: not each word alone too
        features = set(phrase)
    words: dict[str, str] = {}
    for amap in maps:
        spans = [
            (start, -end) for f in features & amap.where.keys() for _, start, end in amap.where[f]
        ]
        reach = -1
        for start, neg_end in sorted(spans):  # by start, the longest first
            if -neg_end <= reach:
                continue  # inside the span before
            reach = -neg_end
            word = amap.text[start:reach]
            words.setdefault("".join(c for c in word.casefold() if c.isalnum()), word)
    return tuple(words.values())[:MAX_WORDS], bool(plan.bag) and not whole


def related_words(plan: KeywordPlan | None, maps: Sequence[AbstractMap]) -> tuple[str, ...]:
    """The related terms of `plan` (`rank.related`) as the `maps` write them."""
    if plan is None or not plan.related:
        return ()
    return evidence(KeywordPlan(Unit(tuple((g, 1.0) for g, _ in plan.related))), maps)[0]


#: Where a keyword matched, by (in title, in abstract); a match that is in neither
#: (a phrase made of words the fields hold apart) counts as the abstract's.
_FIELDS = {
    (True, True): ("title", "abstract"),
    (True, False): ("title",),
    (False, True): ("abstract",),
    (False, False): ("abstract",),
}


def match_spans(
    text: str, profile: Profile, synonyms: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[int, int]]:
    """Character spans of `text` where the profile's keywords match, merged and sorted.

    For templates that highlight: the spans cover whole written words (`LoRA`,
    `low-rank adaptation`, `fine-tuning`), computed by the same analyzer as the ranking.
    The analyzer and each profile's feature set are cached: templates call this per item.
    """
    key = synonyms_key(synonyms)
    analyzer = analyzer_for(synonyms)
    wanted = _wanted(profile.keywords, key)
    spans = sorted((s, e) for _, s, e in _span_finder(analyzer, wanted).spans(text))
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


@functools.lru_cache(maxsize=4096)
def _wanted(keywords: tuple[Keyword, ...], key: SynonymsKey) -> frozenset[str]:
    analyzer, settings = analyzer_for_key(key), RankSettings()
    wanted: set[str] = set()
    for kw in keywords:
        plan = compile_keyword(kw, analyzer, settings.exact_share)
        if plan is not None:
            wanted |= plan.all_features()
    return frozenset(wanted)
