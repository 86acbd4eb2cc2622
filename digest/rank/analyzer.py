"""Text -> index features: the one place that decides when two spellings are the same term.

Papers and keywords go through the same steps, so whatever a keyword turns into, the same
words in a paper turn into the same features:

1. Unicode NFKC, inline LaTeX stripped (`Met$^2$Net` -> `Met2Net`), case folded.
2. Words are runs of letters and digits; each CJK character is a word of its own (those
   scripts do not separate words with spaces). A possessive `'s` is dropped, and a plural
   acronym loses its `s` (`LLMs` -> `llm`, `ViTs` -> `vit`), which the stemmer would not do.
3. Each word yields its Snowball English stem (`PyStemmer`) and an "exact" feature
   (`=` + the word with only a plural `s` removed), so a keyword can prefer its own word
   form over stem cousins (`adapters` vs `adaptive`, which share the stem `adapt`).
4. Two neighbouring words separated only by spaces or hyphens also yield the stem (and
   exact form) of the two written solid: `fine-tuning`, `fine tuning` and `finetuning`
   all yield `finetun` and `=finetuning`.
   That one feature is how hyphen/space/solid variants meet, and it doubles as the
   adjacency (phrase) feature for two-word phrases.
5. Spellings in one synonym group (the built-in acronym table in `acronyms`, plus user
   synonyms) yield the group's feature `≡<name>`: `LoRA`, `LoRAs`, `low-rank adaptation`
   and `low rank adaptations` all yield `≡lora`. Multi-word spellings are compared written
   solid and stemmed, so their hyphen/space variants and plurals match too. A CamelCase
   method name ending in a listed acronym of three or more letters (`QLoRA`, `StyleGAN`)
   also yields that acronym's feature.

Nothing here raises on any string: unknown scripts, emoji and markup simply produce fewer
(or no) words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

import Stemmer

from digest.rank.acronyms import ACRONYMS
from digest.text import strip_latex

#: A word as written, LaTeX markup kept inside it so `Met$^2$Net` stays one word.
_RAW_WORD = re.compile(r"[\w$^{}\\'’]+")
_SUB_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])")
#: Only these between two words keeps them adjacent; any other punctuation breaks a phrase.
_JOINING_GAP = re.compile(r"[\s\-\u2010\u2011\u2012\u2013]{0,3}")
_POSSESSIVE = re.compile(r"['’]s$")
_PLURAL_ACRONYM = re.compile(r"^([A-Z][A-Za-z0-9]*[A-Z0-9])s$")
_SPACES = re.compile(r"\s+")

#: Function words: still part of phrases, but never a keyword's own evidence.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "via",
        "was",
        "were",
        "which",
        "with",
        "without",
        "we",
        "our",
    }
)

GROUP_PREFIX = "≡"
EXACT_PREFIX = "="

_stemmer = Stemmer.Stemmer("english")
_stem_cache: dict[str, str] = {}
_word_cache: dict[str, tuple[tuple[str, str], ...]] = {}
_CACHE_LIMIT = 500_000


def fold(text: str) -> str:
    """NFKC, LaTeX stripped, case folded, white space collapsed: the comparable form."""
    out = strip_latex(unicodedata.normalize("NFKC", text))
    out = unicodedata.normalize("NFKC", out.casefold())
    return _SPACES.sub(" ", out).strip()


def stem(word: str) -> str:
    """Snowball English stem of one folded word (memoised: the same words recur daily)."""
    got = _stem_cache.get(word)
    if got is None:
        if len(_stem_cache) > _CACHE_LIMIT:
            _stem_cache.clear()
        got = _stem_cache[word] = _stemmer.stemWord(word)
    return got


def exact_form(word: str) -> str:
    """The word with only a plural ending removed (`adapters` -> `adapter`)."""
    n = len(word)
    if n > 4 and word.endswith("ies") and word[-4] not in "aeo":
        return word[:-3] + "y"
    if n > 4 and word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if n > 3 and word[-1] == "s" and word[-2] not in "suiy'":
        return word[:-1]
    return word


def _split_raw(raw: str) -> tuple[tuple[str, str], ...]:
    """One written word -> its (folded, as-cased) sub-words, memoised."""
    got = _word_cache.get(raw)
    if got is not None:
        return got
    text = strip_latex(unicodedata.normalize("NFKC", raw))
    text = _POSSESSIVE.sub("", text)
    parts: list[tuple[str, str]] = []
    for sub in _SUB_WORD.findall(text):
        pieces = [p for p in _CJK.split(sub) if p] if _CJK.search(sub) else [sub]
        for piece in pieces:
            cased = _PLURAL_ACRONYM.sub(r"\1", piece)
            folded = unicodedata.normalize("NFKC", cased.casefold())
            # Folding can yield marks that are not word characters (`İ` -> `i` + U+0307):
            # split again so that every word is a pure run and analysis is idempotent.
            parts.extend((word, cased) for word in _SUB_WORD.findall(folded))
    got = tuple(parts)
    if len(_word_cache) > _CACHE_LIMIT:
        _word_cache.clear()
    _word_cache[raw] = got
    return got


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a text: folded form, spelling as cased, where it stands, and whether it
    is joined to the previous word by nothing but spaces or hyphens."""

    word: str
    cased: str
    start: int
    end: int
    joined: bool


def _lex(text: str) -> tuple[list[str], list[str], list[bool], list[int], list[int]]:
    """Words of a text as parallel lists: folded, as cased, joined-to-previous, spans."""
    words: list[str] = []
    cased: list[str] = []
    joined: list[bool] = []
    starts: list[int] = []
    ends: list[int] = []
    prev_end = -1
    gap = _JOINING_GAP.fullmatch
    for m in _RAW_WORD.finditer(text):
        start, end = m.span()
        join = prev_end >= 0 and gap(text, prev_end, start) is not None
        for word, as_cased in _split_raw(m.group()):
            words.append(word)
            cased.append(as_cased)
            joined.append(join)
            starts.append(start)
            ends.append(end)
            join = True  # later pieces of one written word stand together
        prev_end = end
    return words, cased, joined, starts, ends


def tokenize(text: str) -> list[Token]:
    """Split text into words with their character spans in `text` (never raises)."""
    words, cased, joined, starts, ends = _lex(text)
    return [Token(*t) for t in zip(words, cased, starts, ends, joined, strict=True)]


def words(text: str) -> list[str]:
    """The folded words of a text, in order (what `tokenize` yields, without positions)."""
    return [t.word for t in tokenize(text)]


def squash_key(folded_words: Sequence[str]) -> str:
    """Words written solid and stemmed: the key under which multi-word spellings meet."""
    return stem("".join(folded_words))


class SynonymTable:
    """Groups of spellings that count as one term: the acronym table plus user synonyms.

    Every spelling is reduced to its `squash_key`; spellings sharing a key, or listed
    together, fall in one group (user groups that touch a built-in group merge with it).
    """

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        groups: list[list[str]] = [[a, *exps] for a, exps in ACRONYMS.items()]
        for term, equivalents in (synonyms or {}).items():
            if isinstance(equivalents, str):
                equivalents = [equivalents]
            groups.append([term, *equivalents])
        parent: dict[str, str] = {}

        def find(key: str) -> str:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        members: list[tuple[str, tuple[str, ...], bool]] = []  # (key, words, is acronym)
        for n, group in enumerate(groups):
            keys = []
            for m, spelling in enumerate(group):
                ws = tuple(t.word for t in tokenize(str(spelling)))
                if not ws:
                    continue
                # A built-in acronym is compared as written (`CLIP` must not match the
                # stem of `clipping`); every other spelling is compared stemmed.
                is_acronym = m == 0 and n < len(ACRONYMS) and len(ws) == 1
                key = ws[0] if is_acronym else squash_key(ws)
                key = ("@" + key) if is_acronym else key
                members.append((key, ws, is_acronym))
                parent.setdefault(key, key)
                keys.append(key)
            for other in keys[1:]:
                ra, rb = find(keys[0]), find(other)
                if ra != rb:
                    parent[rb] = ra
        # A group is named after its first spelling (the acronym for built-in rows).
        name = {k: GROUP_PREFIX + find(k).lstrip("@") for k in parent}
        self._by_word = {k[1:]: name[k] for k, _, acr in members if acr}
        self._by_stem = {k: name[k] for k, _, acr in members if not acr}
        solid = {"".join(ws) for _, ws, _ in members if len(ws) > 1}
        self._prefixes = frozenset(s[:i] for s in solid for i in range(1, len(s) + 1))
        self._max_chars = max((len(s) for s in solid), default=0) + 4
        #: case-sensitive acronym suffixes for CamelCase names (`QLoRA` -> LoRA)
        self._suffixes = {
            a: self._by_word[a.casefold()]
            for a in ACRONYMS
            if len(a) >= 3 and a.isalnum() and a.casefold() in self._by_word
        }
        self._suffix_rank = {a: i for i, a in enumerate(self._suffixes)}
        self._suffix_lengths = sorted({len(a) for a in self._suffixes})

    def word_group(self, word: str, word_stem: str) -> str | None:
        """Group feature of one folded word (acronyms as written, others by stem)."""
        return self._by_word.get(word) or self._by_stem.get(word_stem)

    def group(self, folded_words: Sequence[str]) -> str | None:
        """The group feature of a whole spelling, or None when it is in no group."""
        if not folded_words:
            return None
        if len(folded_words) == 1:
            return self.word_group(folded_words[0], stem(folded_words[0]))
        return self._by_stem.get(squash_key(folded_words))

    def suffix_group(self, cased: str) -> str | None:
        """Group feature for a CamelCase name ending in a listed acronym (`QLoRA`).

        Looks up the word's last 3, 4, ... characters instead of trying every acronym
        (this runs once per distinct spelling of a corpus); when several acronyms end
        the word, the one listed first wins, as in the table's order.
        """
        best: str | None = None
        for length in self._suffix_lengths:
            if len(cased) <= length:
                break
            tail = cased[-length:]
            fits = tail in self._suffixes and (not tail.isupper() or not cased[:-length].isupper())
            if fits and (best is None or self._suffix_rank[tail] < self._suffix_rank[best]):
                best = tail
        return self._suffixes[best] if best is not None else None

    def scan(self, words: Sequence[str], joined: Sequence[bool]) -> Iterable[tuple[str, int, int]]:
        """Multi-word group spellings in a word run: (feature, first word, last word)."""
        n = len(words)
        prefixes = self._prefixes
        for i in range(n):
            solid = words[i]
            if solid not in prefixes:
                continue
            j = i
            while j + 1 < n and joined[j + 1]:
                j += 1
                solid += words[j]
                if len(solid) > self._max_chars:
                    break
                feature = self._by_stem.get(stem(solid))
                if feature is not None:
                    yield feature, i, j
                if solid not in prefixes:
                    break


#: Spellings an analyzer remembers before it starts over (about 50 MB at the limit).
MEMO_LIMIT = 250_000


class Analyzer:
    """Turns paper text into index features; it owns the synonyms and a memo of the
    features of each spelling it has seen (`analyzer_for` keeps one per synonym table,
    so the memo lasts across ranking calls)."""

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        self.synonyms = SynonymTable(synonyms)
        self._memo: dict[str, tuple[str, ...]] = {}
        self._solid_memo: dict[str, tuple[str, str]] = {}

    def _word_features(self, cased: str, word: str) -> tuple[str, ...]:
        """Stem, exact form and group features of one word (memoised per spelling)."""
        got = self._memo.get(cased)
        if got is None:
            if len(self._memo) >= MEMO_LIMIT:  # a long-running process reads ever new words
                self._memo.clear()
            s = stem(word)
            group = self.synonyms.word_group(word, s)
            named = self.synonyms.suffix_group(cased)
            extra = tuple(dict.fromkeys(g for g in (group, named) if g is not None))
            got = self._memo[cased] = (s, EXACT_PREFIX + exact_form(word), *extra)
        return got

    def _solid(self, solid: str) -> tuple[str, str]:
        """Stem and exact form of two joined words written solid (memoised per pair)."""
        got = self._solid_memo.get(solid)
        if got is None:
            if len(self._solid_memo) >= MEMO_LIMIT:
                self._solid_memo.clear()
            got = self._solid_memo[solid] = (stem(solid), EXACT_PREFIX + exact_form(solid))
        return got

    def features(self, text: str) -> tuple[list[str], int]:
        """All features of a text (with repeats, for term frequency) and its word count."""
        words, cased, joined, _, _ = _lex(text)
        out: list[str] = []
        extend = out.extend
        word_features, pair = self._word_features, self._solid
        prev = ""
        for word, as_cased, join in zip(words, cased, joined, strict=True):
            extend(word_features(as_cased, word))
            if join and prev:
                extend(pair(prev + word))
            prev = word
        out.extend(f for f, _, _ in self.synonyms.scan(words, joined))
        return out, len(words)

    def feature_spans(
        self, text: str, wanted: Container[str] | None = None
    ) -> list[tuple[str, int, int]]:
        """Features with the character span of the words that produced them (only the
        `wanted` ones when given: explanations need a handful, not all)."""
        words, cased, joined, starts, ends = _lex(text)
        out: list[tuple[str, int, int]] = []
        append = out.append
        keep = (lambda f: True) if wanted is None else wanted.__contains__
        word_features, pair = self._word_features, self._solid
        prev = ""
        for i, word in enumerate(words):
            for f in word_features(cased[i], word):
                if keep(f):
                    append((f, starts[i], ends[i]))
            if joined[i] and i:
                for f in pair(prev + word):
                    if keep(f):
                        append((f, starts[i - 1], ends[i]))
            prev = word
        out.extend(
            (f, starts[i], ends[j]) for f, i, j in self.synonyms.scan(words, joined) if keep(f)
        )
        return out


SynonymsKey = tuple[tuple[str, tuple[str, ...]], ...]


def synonyms_key(synonyms: Mapping[str, Sequence[str]] | None) -> SynonymsKey:
    """A hashable form of a synonym table (for caches)."""
    if not synonyms:
        return ()
    return tuple(sorted((k, (v,) if isinstance(v, str) else tuple(v)) for k, v in synonyms.items()))


@functools.lru_cache(maxsize=8)
def analyzer_for_key(key: SynonymsKey) -> Analyzer:
    return Analyzer(dict(key) if key else None)


def analyzer_for(synonyms: Mapping[str, Sequence[str]] | None) -> Analyzer:
    """The shared analyzer of a synonym table: the same input gives the same features, and
    the per-spelling memo is kept across calls (a day's papers share most words)."""
    return analyzer_for_key(synonyms_key(synonyms))
