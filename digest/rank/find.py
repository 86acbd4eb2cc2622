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
of `Analyzer.features` over the title, and over the abstract for the features it uses
at least twice (`ABSTRACT_MIN_COUNT`: results are listed by day, not by score, and a
word said once in passing is mostly not what the paper is about), so the search and the
ranker cannot disagree about what a word is. The archive's index holds each paper's features as the
64-bit hashes ingest keeps (`search_hashes`: `packed.feature_hash`, read from the kept
terms, the paper analysed only when it has none); the browser
(`templates/site/static/search.js`) compiles the query with the same Snowball stemmer
(a JavaScript build of it) and synonym table (`synonym_table`), hashes the features and
looks them up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from digest.errors import QueryError
from digest.keywords import parse_keywords
from digest.model import Paper
from digest.rank import packed, terms
from digest.rank.analyzer import EXACT_PREFIX, STOPWORDS, Analyzer, SynonymTable, tokenize
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


#: An abstract's feature is searchable when the abstract has it at least this often (a
#: title's always is). A word an abstract uses once is mostly said in passing: indexing
#: those too made the archive's index 4.7 times larger (the seeds: 693 features a paper
#: against 146) and filled results, which are listed newest first, not by score, with
#: papers about something else.
ABSTRACT_MIN_COUNT = 2


def search_terms(paper: Paper, analyzer: Analyzer) -> set[str]:
    """The features a search finds `paper` by, as the ranker's analysis gives them: its
    title's, and its abstract's used `ABSTRACT_MIN_COUNT` times or more; without the
    exact forms a search does not use (the index holds those too: a kept hash does not
    say which it is)."""
    title, _ = analyzer.features(paper.title)
    abstract = Counter(analyzer.features(paper.abstract or "")[0])
    kept = {*title, *(f for f, n in abstract.items() if n >= ABSTRACT_MIN_COUNT)}
    return {f for f in kept if not f.startswith(EXACT_PREFIX)}


def search_hashes(
    papers: Sequence[Paper], analyzer: Analyzer, blobs: Mapping[str, bytes] | None = None
) -> list[np.ndarray]:
    """Each paper's searchable feature hashes (uint64: the title's, then the abstract's
    used `ABSTRACT_MIN_COUNT` times or more): `search_hashes_joined` cut per paper."""
    hashes, sizes = search_hashes_joined(papers, analyzer, blobs)
    return np.split(hashes, np.cumsum(sizes)[:-1]) if len(papers) else []


def search_hashes_joined(
    papers: Sequence[Paper], analyzer: Analyzer, blobs: Mapping[str, bytes] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(every paper's searchable feature hashes one after another, how many each has):
    read from its kept terms (`blobs[paper.id]`) where they are packed and still true,
    else from a JSON blob, else analysed (so a paper's hashes are the same either way).

    The packed blobs of all the papers are read as one array, their heads too
    (`_packed_search_hashes`): a day at 2,000 papers took some 60 ms reading them one
    at a time, 25 ms with a `packed.head` each."""
    got = [blobs.get(p.id) for p in papers] if blobs else [None] * len(papers)
    # What `packed.head` asks of a blob's bytes first; the rest is checked at once.
    shaped = [
        i
        for i, blob in enumerate(got)
        if blob is not None and len(blob) >= _HEAD_BYTES and not len(blob) % 8
        and blob[:4] == packed.MAGIC
    ]  # fmt: skip
    joined = b"".join([got[i] for i in shaped])  # type: ignore[misc]
    lengths = np.fromiter((len(got[i]) for i in shaped), dtype=np.int64, count=len(shaped))  # type: ignore[arg-type]
    texts = b"".join([packed.text_hash(papers[i]) for i in shaped])
    fits, hashes, sizes = _packed_search_hashes(joined, lengths, texts)
    chosen = [shaped[k] for k in fits.tolist()]
    if len(chosen) == len(papers):
        return hashes, sizes
    parts: list[np.ndarray] = [np.zeros(0, dtype=np.uint64)] * len(papers)
    cut = np.split(hashes, np.cumsum(sizes)[:-1]) if chosen else []
    for i, part in zip(chosen, cut, strict=True):
        parts[i] = part
    for i in set(range(len(papers))) - set(chosen):
        parts[i] = _hashes_of(papers[i], analyzer, got[i])
    out_sizes = np.fromiter((len(a) for a in parts), dtype=np.int64, count=len(parts))
    return np.concatenate(parts).astype(np.uint64), out_sizes


def _hashes_of(paper: Paper, analyzer: Analyzer, blob: bytes | None) -> np.ndarray:
    """A paper's searchable hashes from a JSON blob, or from its analysed text."""
    decoded = terms.decode(paper, blob) if blob is not None else None
    if decoded is None:
        decoded = terms.analyze(paper, analyzer)
    features = (
        *decoded.title,
        *(
            f
            for f, n in zip(decoded.abstract, decoded.abstract_counts, strict=True)
            if n >= ABSTRACT_MIN_COUNT
        ),
    )
    return np.fromiter((packed.feature_hash(f) for f in dict.fromkeys(features)), dtype=np.uint64)


#: A packed blob's head: magic, text hash, four u32 (title words, abstract words, title
#: features, abstract features), the width of a count, three zero bytes (`packed`).
_HEAD_BYTES = 32
assert packed.HEAD_WORDS * 8 == _HEAD_BYTES


def _packed_search_hashes(
    joined: bytes, lengths: np.ndarray, texts: bytes
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`search_hashes_joined` of blobs joined one after another (`lengths`: each a
    multiple of 8 bytes, at least a head, starting with `packed.MAGIC`), `texts` the
    8-byte text hashes of their papers now: (which blobs are sound and made from that
    text, as `packed.head` checks them;
    their hashes one after another: every title feature, and every abstract feature
    whose count is `ABSTRACT_MIN_COUNT` or more, in blob order; how many each has)."""
    empty = np.zeros(0, dtype=np.int64)
    if not joined:
        return empty, np.zeros(0, dtype=np.uint64), empty
    words = np.frombuffer(joined, dtype="<u8")
    raw = np.frombuffer(joined, dtype=np.uint8)
    expected = np.frombuffer(texts, dtype=np.uint8).reshape(-1, 8)
    starts = np.cumsum(lengths) - lengths
    head = raw[starts[:, None] + np.arange(_HEAD_BYTES)]
    fields = np.ascontiguousarray(head[:, 12:28]).view("<u4").astype(np.int64)
    nt, n = fields[:, 2], fields[:, 2] + fields[:, 3]
    width = head[:, 28].astype(np.int64)
    counts_bytes = width * n
    sound = (
        ((width == 1) | (width == 2) | (width == 4))
        & (lengths == _HEAD_BYTES + 8 * n + counts_bytes + (-counts_bytes % 8))
        & (head[:, 4:12] == expected).all(axis=1)
    )
    fits = np.flatnonzero(sound)
    if len(fits) < len(sound):
        starts, nt, n, width = starts[fits], nt[fits], n[fits], width[fits]
    first = starts // 8 + packed.HEAD_WORDS  # each blob's first hash, in words
    before = np.cumsum(n) - n  # the kept features before each blob's
    total = int(n.sum())
    counts_at = 8 * (first + n)  # each blob's first count, in bytes
    if (width == 1).all():  # the usual case: a count is one byte, a blob's are one run
        runs = zip(counts_at.tolist(), (counts_at + n).tolist(), strict=True)
        counts = np.frombuffer(b"".join([joined[lo:hi] for lo, hi in runs]), dtype=np.uint8)
        keep = counts >= ABSTRACT_MIN_COUNT
    else:
        step = np.arange(total, dtype=np.int64)
        owner = np.repeat(np.arange(len(n)), n)
        at = counts_at[owner] + width[owner] * (step - before[owner])
        count = raw[at].astype(np.int64)
        for b in (1, 2, 3):  # wider counts: the next bytes, little-endian
            wide = np.flatnonzero(width[owner] > b)
            count[wide] += raw[at[wide] + b].astype(np.int64) << (8 * b)
        keep = count >= ABSTRACT_MIN_COUNT
    # The title's features are always kept.
    title_before = np.cumsum(nt) - nt
    titles = np.repeat(before - title_before, nt)
    titles += np.arange(int(nt.sum()), dtype=np.int64)
    keep[titles] = True
    chosen = np.flatnonzero(keep)
    sizes = np.searchsorted(chosen, before + n) - np.searchsorted(chosen, before)
    hashes = words[chosen + np.repeat(first - before, sizes)].astype(np.uint64)
    return fits, hashes, sizes


def synonym_table(synonyms: SynonymTable) -> dict[str, dict[str, str]]:
    """What the browser needs to compile a query's groups as `compile_keyword` does:
    listed acronyms by folded spelling ("word"), every other spelling by its stem
    (multi-word ones written solid: "stem").

    Read from the table's own maps rather than a method of it: any edit of analyzer.py
    changes `terms.terms_key`, which would make every paper's kept terms stale."""
    return {"word": dict(synonyms._by_word), "stem": dict(synonyms._by_stem)}


__all__ = [
    "QueryError",
    "SearchQuery",
    "compile_search",
    "plan_matches",
    "search_hashes",
    "search_hashes_joined",
    "search_matches",
    "search_terms",
    "synonym_table",
]
