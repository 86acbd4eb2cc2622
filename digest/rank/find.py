"""What the archive's search finds: the ranker's word rules, as a yes/no match.

A search query is typed in the profile syntax (`digest.keywords`): keywords separated by
commas are alternatives, `"video diffusion"` is a phrase, `-survey` excludes, a `^2`
weight is read and ignored. Each keyword is compiled as the ranker compiles it
(`compile_keyword`, without the exact-form preference, which only orders matches), and
a paper is found when it matches the keyword fully:

- a term or a quoted phrase: its phrase features occur (`fine-tuning`, `fine tuning` and
  `finetuning` are one feature; a plural or another inflection has the same stem; an
  acronym and its expansion share a group feature);
- several words without quotes: they occur together, as a phrase would, or each of them
  occurs somewhere in the title or abstract (the ranker also credits a paper that has
  only some of them; a search box does not list those);

and no exclusion matches it as a phrase (as the ranker's vetoes). The features are those
of `Analyzer.features` over title and abstract, so the search and the ranker cannot
disagree about what a word is. The browser (`templates/site/static/search.js`) runs the
same rules over what the publisher writes (`search_terms`, `spelling_entry`): it
compiles the query with the stems the publisher looked up for every spelling in the
archive, and tests it on each paper's features.

The browser has no stemmer: a query word (or pair of words) the archive never spells is
looked up as its plural-stripped form and in the synonym table; failing that it finds
nothing, where the Python side would stem it and might meet another spelling's stem
(`finetunes` when the archive only has `finetuning`). Every spelling a paper of the
archive uses is exact.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from digest.errors import QueryError
from digest.keywords import parse_keywords
from digest.rank.analyzer import EXACT_PREFIX, STOPWORDS, Analyzer, SynonymTable, stem, tokenize
from digest.rank.query import KeywordPlan, compile_keyword


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A compiled query: papers matching any `include` plan and no `exclude` plan."""

    include: tuple[KeywordPlan, ...]
    exclude: tuple[KeywordPlan, ...]


def compile_search(text: str, analyzer: Analyzer) -> SearchQuery:
    """Compile what a reader typed into the search box (`QueryError` for bad syntax)."""
    include: list[KeywordPlan] = []
    exclude: list[KeywordPlan] = []
    for kw in parse_keywords(text):
        body = kw.text[1:] if kw.text.startswith("-") else kw.text
        words = [t.word for t in tokenize(body)]
        if not words or all(w in STOPWORDS for w in words):
            continue  # nothing to search for (as `make_profile` drops such keywords)
        plan = compile_keyword(type(kw)(body, kw.phrase), analyzer, 0.0)
        if plan is not None:
            (exclude if body is not kw.text else include).append(plan)
    return SearchQuery(tuple(include), tuple(exclude))


def _any(features: Iterable[str], have: Collection[str]) -> bool:
    return any(f in have for f in features)


def phrase_matches(plan: KeywordPlan, have: Collection[str]) -> bool:
    """The keyword as a whole occurs (what a veto tests)."""
    return _any((f for f, _ in plan.phrase.features), have) and all(
        f in have for f in plan.need_all
    )


def plan_matches(plan: KeywordPlan, have: Collection[str]) -> bool:
    """The keyword matches fully: as a phrase, or with every one of its separate words."""
    if phrase_matches(plan, have):
        return True
    return bool(plan.bag) and all(_any((f for f, _ in u.features), have) for u in plan.bag)


def search_matches(query: SearchQuery, have: Collection[str]) -> bool:
    """Whether a paper with features `have` is found by `query`."""
    return any(plan_matches(p, have) for p in query.include) and not any(
        phrase_matches(p, have) for p in query.exclude
    )


def search_terms(text: str, analyzer: Analyzer) -> tuple[set[str], set[str]]:
    """(features, spellings) of a text: its features as the ranker indexes them (without
    the exact forms a search does not use), and every spelling a query could look up to
    meet them: each folded word, each pair of joined words written solid, and each
    multi-word synonym spelling written solid."""
    features, _ = analyzer.features(text)
    tokens = tokenize(text)
    words = [t.word for t in tokens]
    joined = [t.joined for t in tokens]
    spellings = set(words)
    spellings.update(words[i - 1] + words[i] for i in range(1, len(words)) if joined[i])
    spellings.update("".join(words[i : j + 1]) for _, i, j in analyzer.synonyms.scan(words, joined))
    return {f for f in features if not f.startswith(EXACT_PREFIX)}, spellings


def spelling_entry(spelling: str, synonyms: SynonymTable) -> list[str]:
    """What the browser needs to compile a query word (or words written solid) as the
    ranker does: [stem, group by stem, group as an acronym], trailing empties dropped."""
    by_stem, by_word = synonyms.spelling_groups(spelling)
    entry = [stem(spelling), by_stem or "", by_word or ""]
    while entry[-1] == "":
        entry.pop()
    return entry


def synonym_table(synonyms: SynonymTable) -> dict[str, dict[str, str]]:
    """The synonym groups by spelling, for query words the archive never uses: listed
    acronyms (folded) and multi-word spellings written solid."""
    return synonyms.spellings()


__all__ = [
    "QueryError",
    "SearchQuery",
    "compile_search",
    "plan_matches",
    "search_matches",
    "search_terms",
    "spelling_entry",
    "synonym_table",
]
