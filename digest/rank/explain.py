"""Why a paper was picked: matched keywords, where they matched, and abstract snippets.

`match_spans` gives templates the character spans to highlight, computed by the same
analyzer as the ranking (so `LoRA` highlights "low-rank adaptation" too). The abstracts'
sentences, spans and snippets are `rank.snippets`'.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from digest.model import MEANING, RELATED, DigestItem, Keyword, Match, Paper, Profile
from digest.rank.analyzer import (
    Analyzer,
    SynonymsKey,
    analyzer_for,
    analyzer_for_key,
    synonyms_key,
)
from digest.rank.index import PaperIndex
from digest.rank.query import KeywordPlan, Unit, compile_keyword
from digest.rank.score import Compiled, Selections, lookup
from digest.rank.settings import RankSettings
from digest.rank.snippets import (
    MATCHES_LIMIT,
    AbstractMap,
    ExplainMemo,
    snippets_for,
    span_finder,
)


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
    spans = sorted((s, e) for _, s, e in span_finder(analyzer, wanted).spans(text))
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
