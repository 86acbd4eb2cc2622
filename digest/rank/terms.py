"""A paper's analysed text, kept: what the index needs of a paper, computed once.

Analysing a paper (`Analyzer.features` of its title and abstract) costs about 2 ms: a
send that ranks the papers since the oldest reader's last digest (a week for weekly
readers: 14,000 papers at 2,000 a day) would spend half a minute re-reading texts it read
yesterday. So ingest analyses each paper once and the store keeps the result as an opaque
blob (`encode`); ranking reads it and builds the same index from it. A blob is packed
(`packed`: features as 64-bit hashes, read a day at a time as numpy arrays, a few
microseconds a paper) when it can be; the older layout, compressed JSON that spells
every feature (`encode_json`, about 1/40 of the analysis to decode), is still read, and
written for a paper whose features cannot be packed. A packed blob holds no feature as
text: it serves rankings of known features (`terms_wanted`), and a ranking of every
feature (`terms_for`) analyses such a paper again.

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
import re
import zlib
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import Stemmer

from digest.model import Paper
from digest.rank import acronyms, analyzer, packed
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
    return packed.text_hash(paper).hex()


def encode(paper: Paper, terms: PaperTerms) -> bytes:
    """The blob the store keeps for `paper`: packed (about 9 bytes a feature, some 6 KB
    a paper) unless its features cannot be (`packed.pack`), then `encode_json`."""
    got = packed.pack(
        packed.text_hash(paper),
        terms.title,
        terms.title_counts,
        terms.title_words,
        terms.abstract,
        terms.abstract_counts,
        terms.abstract_words,
    )
    return got if got is not None else encode_json(paper, terms)


def encode_json(paper: Paper, terms: PaperTerms) -> bytes:
    """The older blob layout: compressed JSON (about 2 KB a paper), every feature spelled."""
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
    """The terms in `blob` if it was made from `paper`'s text as it is now, else None
    (also for a packed blob: it does not spell its features)."""
    try:
        text_hash, nt, na, t, tc, a, ac = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError, TypeError):
        return None
    if text_hash != _text_hash(paper) or len(t) != len(tc) or len(a) != len(ac):
        return None
    return PaperTerms(tuple(t), tuple(tc), int(nt), tuple(a), tuple(ac), int(na))


def repack(paper: Paper, blob: bytes) -> bytes | None:
    """`blob` in the packed layout when it is a JSON one still true of `paper` (an older
    store's blobs, read some 40 times faster once repacked); None otherwise."""
    if packed.is_packed(blob):
        return None
    terms = decode(paper, blob)
    got = encode(paper, terms) if terms is not None else None
    return got if got is not None and packed.is_packed(got) else None


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


#: A blob's head as `encode` writes it: the text hash and the word counts, then the
#: opening bracket of the title's features.
_HEAD = re.compile(rb'\["([0-9a-f]{16})",(\d+),(\d+),\[')
#: Characters a feature spelled in JSON must not hold for `WantedFeatures` to find it by
#: splitting a blob at commas (analyzer features are word characters, `=` and `≡`;
#: a backslash only starts a `\\uXXXX` escape then).
_UNSPLITTABLE = re.compile(rb'[,\[\]"]')


@dataclass(frozen=True, slots=True)
class WantedFeatures:
    """The only features a ranking will look up, as a blob spells them (JSON strings),
    so `decode_wanted` can find them without decoding the paper's other features."""

    #: JSON spelling -> feature; None when some feature cannot be found that way
    spelled: dict[bytes, str] | None
    #: the features themselves (what a packed blob is searched for)
    features: frozenset[str] = frozenset()

    @classmethod
    def of(cls, wanted: Collection[str]) -> WantedFeatures:
        spelled = {json.dumps(f).encode("ascii"): f for f in wanted}
        ok = not any(_UNSPLITTABLE.search(s[1:-1]) for s in spelled)
        return cls(spelled if ok else None, frozenset(wanted))


def _wanted_of(
    raw: bytes, start: int, end: int, counts_end: int, spelled: dict[bytes, str]
) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """The wanted features of one field (its features spelled in raw[start:end], their
    counts in raw[end + 3:counts_end]) in their order, or None when the two lists do
    not pair up (then the caller decodes the whole blob)."""
    counts_start = end + 3
    if raw.count(b",", start, end) != raw.count(b",", counts_start, counts_end):
        return None  # a feature with a comma in it: the lists do not pair by position
    if (start == end) != (counts_start == counts_end):
        return None
    if start == end:
        return (), ()
    parts = raw[start:end].split(b",")
    hits = spelled.keys() & parts
    if not hits:
        return (), ()
    counts = raw[counts_start:counts_end].split(b",")
    # `encode` writes each feature of a field once (zlib's checksum refuses a damaged
    # blob), so a feature's first place is its only one.
    positions = sorted(parts.index(h) for h in hits)
    try:
        found = tuple(int(counts[i]) for i in positions)
    except ValueError:
        return None  # not a count `encode` writes
    return tuple(spelled[parts[i]] for i in positions), found


def decode_wanted(paper: Paper, blob: bytes, wanted: WantedFeatures) -> PaperTerms | None:
    """`paper`'s terms in `blob`, holding every wanted feature with its count: only those
    (in their order) when the blob has the layout `encode` writes, so the other features
    (most of a paper's) are never decoded; all of them when it had to be decoded whole.
    None when the blob is not `paper`'s, as `decode`."""
    if packed.is_packed(blob):
        (found,) = packed.wanted_terms([paper], [blob], wanted.features)
        return PaperTerms(*found) if found is not None else None
    if wanted.spelled is None:
        return decode(paper, blob)
    try:
        raw = zlib.decompress(blob)
    except zlib.error:
        return None
    head = _HEAD.match(raw)
    # The layout: head, [title features],[counts],[abstract features],[counts]]
    t_end = raw.find(b"],[", head.end()) if head else -1
    tc_end = raw.find(b"],[", t_end + 3) if t_end >= 0 else -1
    a_end = raw.find(b"],[", tc_end + 3) if tc_end >= 0 else -1
    if head is None or a_end < 0 or not raw.endswith(b"]]"):
        return decode(paper, blob)  # not the layout `encode` writes: the slow way
    if head.group(1).decode("ascii") != _text_hash(paper):
        return None
    spelled = wanted.spelled
    title = _wanted_of(raw, head.end(), t_end, tc_end, spelled)
    abstract = _wanted_of(raw, tc_end + 3, a_end, len(raw) - 2, spelled)
    if title is None or abstract is None:
        return decode(paper, blob)
    return PaperTerms(
        title[0], title[1], int(head.group(2)), abstract[0], abstract[1], int(head.group(3))
    )


def terms_wanted(
    papers: Sequence[Paper],
    analyzer: Analyzer,
    blobs: Mapping[str, bytes] | None,
    wanted: Collection[str],
) -> Iterator[PaperTerms]:
    """`terms_for` for an index of the `wanted` features only (`build_index(wanted=...)`,
    which keeps those of each paper's terms): each paper's terms hold all its wanted
    features, and mostly no others, at a fraction of the decoding. Packed blobs are
    read `BATCH` papers at a time (`packed.wanted_terms`)."""
    spelled = WantedFeatures.of(wanted)
    for start in range(0, len(papers), BATCH):
        batch = papers[start : start + BATCH]
        got = [blobs.get(p.id) for p in batch] if blobs else [None] * len(batch)
        found = packed.wanted_terms(batch, got, spelled.features)
        for paper, blob, hit in zip(batch, got, found, strict=True):
            if hit is not None:
                yield PaperTerms(*hit)
                continue
            old = decode_wanted(paper, blob, spelled) if blob is not None else None
            yield old if old is not None else analyze(paper, analyzer)


def terms_kept(
    papers: Sequence[Paper],
    analyzer: Analyzer,
    kept: Sequence[PaperTerms | None],
    blobs: Mapping[str, bytes] | None,
    wanted: Collection[str],
) -> Iterator[PaperTerms]:
    """`terms_wanted`, with the terms of each paper taken from `kept[j]` where there is
    one (made from its postings: `rank.postings.wanted_terms`): only the others' blobs are
    read (or their text analysed)."""
    rest = terms_wanted(
        [p for p, k in zip(papers, kept, strict=True) if k is None], analyzer, blobs, wanted
    )
    for got in kept:
        yield got if got is not None else next(rest)


#: Papers whose packed blobs are read at once (some 6 KB each: 25 MB a batch).
BATCH = 4096
