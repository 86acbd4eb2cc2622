"""A paper's analysed text, kept: what the index needs of a paper, computed once.

Analysing a paper (`Analyzer.features` of its title and abstract) costs about 2 ms: a
send that ranks the papers since the oldest reader's last digest (a week for weekly
readers: 14,000 papers at 2,000 a day) would spend half a minute re-reading texts it read
yesterday. So ingest analyses each paper once and the store keeps the result as an opaque
blob (`encode`); ranking decodes it (`decode`, about 1/40 of the analysis) and builds the
same index from it.

A blob is only used when it is still true:

- its `terms_key` names the analyzer that made it: a hash of the analyzer's code (so any
  change of the analysis invalidates every blob without anyone remembering to bump a
  number) and of the synonym table;
- it carries a hash of the title and abstract it was made from: a paper whose text a
  later capture enriched is analysed again.

Anything else (missing, stale, damaged) is analysed afresh: a blob can only save time,
never change a ranking.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import Stemmer

from digest.model import Paper
from digest.rank import acronyms, analyzer
from digest.rank.analyzer import Analyzer, analyzer_for, synonyms_key

#: The format of a blob (the layout below); part of every key.
FORMAT = 1


@dataclass(frozen=True, slots=True)
class PaperTerms:
    """One paper's features (each once, in first-occurrence order, with its count) and the
    word counts of its title and abstract: all `build_index` reads of a paper."""

    title: tuple[str, ...]
    title_counts: tuple[int, ...]
    title_words: int
    abstract: tuple[str, ...]
    abstract_counts: tuple[int, ...]
    abstract_words: int


def analyze(paper: Paper, analyzer: Analyzer) -> PaperTerms:
    """The terms of `paper` as `analyzer` reads it (the slow path that blobs save)."""
    title, title_words = analyzer.features(paper.title)
    abstract, abstract_words = analyzer.features(paper.abstract or "")
    t, a = Counter(title), Counter(abstract)  # insertion-ordered: first occurrence first
    return PaperTerms(
        tuple(t), tuple(t.values()), title_words, tuple(a), tuple(a.values()), abstract_words
    )


def _text_hash(paper: Paper) -> str:
    text = f"{paper.title}\0{paper.abstract or ''}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def encode(paper: Paper, terms: PaperTerms) -> bytes:
    """The blob the store keeps for `paper` (compressed JSON: about 2 KB a paper)."""
    data = [
        _text_hash(paper),
        terms.title_words,
        terms.abstract_words,
        terms.title,
        terms.title_counts,
        terms.abstract,
        terms.abstract_counts,
    ]
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def decode(paper: Paper, blob: bytes) -> PaperTerms | None:
    """The terms in `blob` if it was made from `paper`'s text as it is now, else None."""
    try:
        text_hash, nt, na, t, tc, a, ac = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError, TypeError):
        return None
    if text_hash != _text_hash(paper) or len(t) != len(tc) or len(a) != len(ac):
        return None
    return PaperTerms(tuple(t), tuple(tc), int(nt), tuple(a), tuple(ac), int(na))


@functools.cache
def _code_hash() -> str:
    """A hash of the code that decides the features (analyzer, acronyms, the stemmer)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(getattr(Stemmer, "__version__", "")).encode())  # the stems come from it
    for module in (analyzer, acronyms):
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest()


def terms_key(synonyms: Mapping[str, Sequence[str]] | None) -> str:
    """The key blobs of this analysis are kept under: format, analyzer code, synonyms."""
    table = json.dumps(synonyms_key(synonyms), separators=(",", ":"))
    syn = hashlib.blake2b(table.encode(), digest_size=8).hexdigest()
    return f"{FORMAT}:{_code_hash()}:{syn}"


def encode_terms(
    papers: Sequence[Paper], synonyms: Mapping[str, Sequence[str]] | None
) -> list[tuple[str, bytes]]:
    """(paper id, blob) of each paper: what ingest hands the store to keep."""
    analyzer = analyzer_for(synonyms)
    return [(p.id, encode(p, analyze(p, analyzer))) for p in papers]


def terms_for(
    papers: Sequence[Paper], analyzer: Analyzer, blobs: Mapping[str, bytes] | None = None
) -> Iterator[PaperTerms]:
    """Every paper's terms, one at a time (a window's terms are hundreds of MB at once):
    decoded from `blobs[paper.id]` where that is still true, analysed otherwise."""
    for paper in papers:
        blob = blobs.get(paper.id) if blobs else None
        got = decode(paper, blob) if blob is not None else None
        yield got if got is not None else analyze(paper, analyzer)
