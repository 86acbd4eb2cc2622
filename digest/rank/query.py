"""Profile syntax: what a subscriber types, parsed into `Keyword`s and compiled to features.

Syntax (one keyword per list element, or a comma-separated string):

- ``LoRA`` — a term. Case, accents/width (Unicode NFKC), inline LaTeX and a plural ``s``
  do not matter; English stemming applies (``adapters`` also finds ``adapter``, and, with
  less credit, stem cousins such as ``adaptive``). Acronyms in the built-in table and
  their expansions find each other (``LoRA`` finds "low-rank adaptation", ``TTS`` finds
  "text-to-speech"), as do the spellings you list as synonyms in config.toml.
  ``LLMs``/``MLLMs`` count as ``LLM``/``MLLM``; a method name ending in a listed acronym
  (``QLoRA``, ``StyleGAN``) counts as that acronym.
- ``fine-tuning`` — hyphenated words are one term: ``fine-tuning``, ``fine tuning`` and
  ``finetuning`` are the same in keywords and in papers.
- ``parameter-efficient fine-tuning`` — several words without quotes: a paper that has
  them together (in order, joined by spaces or hyphens) scores as for a phrase; a paper
  that has only some of them, or has them apart, still scores, but lower (rarer words
  count more). Adjacency is rewarded, not required.
- ``"video diffusion"`` — a quoted phrase: the words must stand together, in this order
  (hyphens or spaces between them). A quote left open runs to the end of the keyword.
- ``LoRA^2`` / ``"video diffusion"^1.5`` — a weight (positive, default 1). Weights are
  relative within a profile: the heaviest keyword counts fully, a keyword of half its
  weight counts half.
- ``-diffusion`` (in the keyword list given to `make_profile`) or the profile's
  ``exclude`` list — a paper that matches an exclusion is vetoed, however well it
  matches otherwise. An excluded term or phrase vetoes only where it matches as a phrase
  would (all its words together).
- Keywords combine as alternatives: one keyword matching well is enough; each further
  matching keyword raises the score (a "noisy OR", see `score`).

A keyword of more than `MAX_KEYWORD_CHARS` characters is an error; keywords with nothing
to search for (only punctuation or emoji) are dropped, and a profile left without any
searchable keyword is an error (`QueryError`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from digest.errors import QueryError
from digest.keywords import format_keyword, parse_keywords
from digest.model import Keyword, Profile
from digest.rank.analyzer import (
    EXACT_PREFIX,
    STOPWORDS,
    Analyzer,
    SynonymTable,
    Token,
    exact_form,
    stem,
    tokenize,
)

_HYPHENS = "-\u2010\u2011\u2012\u2013"
#: Re-exported: the syntax lives in `digest.keywords`, shared with the store and the CLI.
__all__ = [
    "Keyword",
    "KeywordPlan",
    "compile_keyword",
    "format_keyword",
    "make_profile",
    "parse_keywords",
]


@functools.lru_cache(maxsize=8192)
def _search_words(text: str) -> str | None:
    """The words a keyword searches for, folded ("" never: None when it has none but
    function words such as "the", which would match every paper). Cached: a bulk import
    meets the same few hundred keywords in a hundred thousand profiles."""
    tokens = tokenize(text)
    if not tokens or all(t.word in STOPWORDS for t in tokens):
        return None
    return " ".join(t.word for t in tokens)


def _searchable(keywords: Sequence[Keyword]) -> list[Keyword]:
    """Drop keywords without any word (or with only function words), merge repeats
    (keeping the larger weight)."""
    seen: dict[tuple[str, bool], Keyword] = {}
    for kw in keywords:
        words = _search_words(kw.text)
        if words is None:
            continue
        key = (words, kw.phrase)
        if key not in seen or seen[key].weight < kw.weight:
            seen[key] = kw
    return list(seen.values())


def make_profile(
    name: str,
    keywords: str | Sequence[str] | Sequence[Keyword],
    exclude: str | Sequence[str] | Sequence[Keyword] = (),
    max_items: int | None = None,
    min_score: float | None = None,
) -> Profile:
    """Build a validated `Profile` from what a person typed: the one parser of profiles.

    Called where profiles come in (config.toml, the CLI, the web form); everything after
    that passes the `Profile` on and never parses again. `keywords`/`exclude` are strings
    or lists as for `parse_keywords` (or ready `Keyword`s); keywords written `-term` join
    the exclusions. `max_items`/`min_score` left None follow the ranking defaults.
    Raises `QueryError` with one sentence when the profile has no positive keyword to
    search for, or a limit is out of range.
    """
    if not isinstance(name, str) or not name.strip():
        raise QueryError("a profile needs a non-empty name")
    name = name.strip()

    def as_keywords(value: object) -> tuple[Keyword, ...]:
        if isinstance(value, Sequence) and value and all(isinstance(v, Keyword) for v in value):
            return tuple(value)
        return parse_keywords(value)  # type: ignore[arg-type]

    positive, negative = [], list(as_keywords(exclude))
    for kw in as_keywords(keywords):
        if kw.text.startswith("-"):
            negative.append(Keyword(kw.text[1:], kw.phrase, kw.weight))
        else:
            positive.append(kw)
    negative = [Keyword(k.text.lstrip("-") or k.text, k.phrase, k.weight) for k in negative]
    positive, negative = _searchable(positive), _searchable(negative)
    if not positive:
        raise QueryError(
            f"profile {name!r} has no keyword to search for "
            '(it is empty, or has only exclusions, punctuation, emoji or words like "the")'
        )
    if max_items is not None and (
        isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1
    ):
        raise QueryError(f"profile {name!r}: max_items must be a whole number of at least 1")
    if min_score is not None and (
        isinstance(min_score, bool)
        or not isinstance(min_score, int | float)
        or not 0 <= min_score <= 1
    ):
        raise QueryError(f"profile {name!r}: min_score must be a number from 0 to 1")
    return Profile(
        name,
        tuple(positive),
        tuple(negative),
        None if max_items is None else int(max_items),
        None if min_score is None else float(min_score),
    )


def profile_text(profile: Profile) -> tuple[list[str], list[str]]:
    """A profile's keywords and exclusions as a person would type them (for listings)."""
    return [format_keyword(k) for k in profile.keywords], [
        format_keyword(k) for k in profile.exclude
    ]


# --- compilation: keyword -> features ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    """Evidence for one term: features and their shares (summing to 1)."""

    features: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class KeywordPlan:
    """How one keyword is scored against the index (see `score` for the formula).

    `phrase` is the keyword as a whole (for one term, the term itself); when
    `need_all` is not empty, the phrase counts only where all those features occur.
    `bag` holds the separate terms of an unquoted multi-word keyword.
    """

    phrase: Unit
    need_all: tuple[str, ...] = ()
    bag: tuple[Unit, ...] = ()
    #: Terms the stored papers use for this keyword, with their weights
    #: (`rank.related`; empty unless a related-terms table was given).
    related: tuple[tuple[str, float], ...] = ()

    def all_features(self) -> set[str]:
        """Every feature that can show this keyword matched (for explanations)."""
        out = {f for f, _ in self.phrase.features}
        for unit in self.bag:
            out.update(f for f, _ in unit.features)
        return out

    def index_features(self) -> set[str]:
        """Every feature scoring this keyword looks up in the index (`all_features`, the
        pairs a phrase needs and the related terms)."""
        return self.all_features() | set(self.need_all) | {g for g, _ in self.related}

    def anchors(self) -> list[str]:
        """The features that stand for the keyword as a whole (its phrase, exact word
        forms aside): what its related terms are learned for (`rank.related`)."""
        return [f for f, _ in self.phrase.features if not f.startswith(EXACT_PREFIX)]


def _word_unit(word: str, synonyms: SynonymTable, exact_share: float) -> Unit:
    group = synonyms.word_group(word, stem(word))
    if group is not None:
        return Unit(((group, 1.0),))
    if exact_share <= 0:
        return Unit(((stem(word), 1.0),))
    return Unit(((stem(word), 1.0 - exact_share), (EXACT_PREFIX + exact_form(word), exact_share)))


def _solid_unit(a: str, b: str, exact_share: float) -> Unit:
    """Two words that must stand together: their solid stem and exact form."""
    solid = a + b
    if exact_share <= 0:
        return Unit(((stem(solid), 1.0),))
    return Unit(((stem(solid), 1.0 - exact_share), (EXACT_PREFIX + exact_form(solid), exact_share)))


def _pairs(ws: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(stem(a + b) for a, b in itertools.pairwise(ws)))


def _chunks(text: str, tokens: Sequence[Token]) -> list[list[str]]:
    """Group words joined by hyphens (or written as one token) into chunks."""
    chunks: list[list[str]] = []
    prev: Token | None = None
    for tok in tokens:
        gap = text[prev.end : tok.start] if prev is not None else ""
        same_word = prev is not None and tok.start == prev.start
        if prev is not None and (same_word or (gap and all(c in _HYPHENS for c in gap))):
            chunks[-1].append(tok.word)
        else:
            chunks.append([tok.word])
        prev = tok
    return chunks


def compile_keyword(keyword: Keyword, analyzer: Analyzer, exact_share: float) -> KeywordPlan | None:
    """Turn one keyword into features; None when it has no word to search for."""
    tokens = tokenize(keyword.text)
    if not tokens:
        return None
    synonyms = analyzer.synonyms
    ws = [t.word for t in tokens]
    chunks = _chunks(keyword.text, tokens)

    def chunk_unit(chunk: list[str]) -> tuple[Unit, tuple[str, ...]]:
        if len(chunk) == 1:
            return _word_unit(chunk[0], synonyms, exact_share), ()
        group = synonyms.group(chunk)
        if group is not None:
            return Unit(((group, 1.0),)), ()
        if len(chunk) == 2:
            return _solid_unit(chunk[0], chunk[1], exact_share), ()
        pairs = _pairs(chunk)
        unit = Unit(tuple((p, 1.0 / len(pairs)) for p in pairs))
        return unit, pairs if len(pairs) > 1 else ()

    if len(chunks) == 1:
        unit, need = chunk_unit(chunks[0])
        return KeywordPlan(unit, need)
    group = synonyms.group(ws)
    if group is not None:
        phrase, need = Unit(((group, 1.0),)), ()
    elif len(ws) == 2:
        phrase, need = _solid_unit(ws[0], ws[1], exact_share), ()
    else:
        pairs = _pairs(ws)
        phrase = Unit(tuple((p, 1.0 / len(pairs)) for p in pairs))
        need = pairs if len(pairs) > 1 else ()
    if keyword.phrase:
        return KeywordPlan(phrase, need)
    bag = tuple(
        chunk_unit(chunk)[0] for chunk in chunks if not (len(chunk) == 1 and chunk[0] in STOPWORDS)
    )
    return KeywordPlan(phrase, need, bag)
