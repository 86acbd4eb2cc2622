"""The search index's postings: which papers of a day have each feature, as compact text.

A feature is known by its 64-bit hash `h` (`digest.rank.packed.feature_hash`, the id
ingest keeps in the store): its top 12 bits pick one of `FINE` chunks, the next 28 bits
are its key in the chunk (the other 24 are not kept: each kept bit costs every posting a
fifth of a character). A chunk of a day holds some tens of features (150 at 2,000 papers
a day), so a look-up meets another feature with its 40 bits about once in 2 million
chunks: a year's query of three words about once in 2,000 queries, and then it finds
papers one feature too many, never loses one.

A day is written as `FINE` chunks, one after another, each self-delimiting, in an
alphabet of 64 characters that need no escaping in a script (`ALPHABET`). Numbers are
"varints": groups of 5 bits, most significant first, every character but the last one
offset by 32. A chunk is

    n                         how many features it holds
    n key gaps                keys ascending: the first key, then key - previous - 1
    n metas                   count * 2 + dense
    gaps of sparse features   for each sparse feature in order, `count` paper gaps
                              (papers ascending: the first, then paper - previous - 1)
    bitsets of dense ones     for each dense feature, ceil(papers / 6) characters of 6
                              bits: paper p is bit p % 6 of character p // 6

A feature is dense when it is in more than a sixth of the day's papers (a bitset is then
shorter than one character a paper). Papers are numbered in the day's order (the order of
its rows). A month's bucket `j` of `B` is the chunks `j * FINE / B` up to the next
bucket's, of each of its days in turn (newest day first): a concatenation, so a month is
made again from its days' files without decoding them (`search.py`).

Encoding is vectorised (numpy): a day at 2,000 papers holds about a million postings.
`decode_day` is the reference reader (tests; `search.js` reads the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The 64 characters of the encoding, by value.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
_CODES = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
#: Chunks a day is cut into (a month has at most this many buckets).
FINE_BITS = 12
FINE = 1 << FINE_BITS
KEY_BITS = 28
_KEY_MASK = np.uint64((1 << KEY_BITS) - 1)


def split_hash(h: int) -> tuple[int, int]:
    """(chunk, key) of a feature hash."""
    return h >> (64 - FINE_BITS), (h >> (64 - FINE_BITS - KEY_BITS)) & ((1 << KEY_BITS) - 1)


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(characters, length of each value) of `values` (below 2**40) as varints.

    Written digit by digit from each value's last one: digit k (from the end) exists
    for the values longer than k, so each pass touches only those (most postings' gaps
    are one or two digits)."""
    v = values.astype(np.int64)
    lengths = np.ones(len(v), dtype=np.int64)
    for k in range(1, 8):
        longer = v >= 1 << (5 * k)
        if not longer.any():
            break
        lengths += longer
    ends = np.cumsum(lengths) - 1  # where each value's last digit goes
    out = np.empty(int(ends[-1]) + 1 if len(v) else 0, dtype=np.uint8)
    out[ends] = _CODES[v & 31]
    for k in range(1, int(lengths.max(initial=1))):
        some = np.flatnonzero(lengths > k)
        out[ends[some] - k] = _CODES[((v[some] >> (5 * k)) & 31) + 32]
    return out, lengths


def encode_day(papers: Sequence[np.ndarray]) -> tuple[np.ndarray, bytes]:
    """A day's postings: (offsets of its `FINE` chunks, `FINE + 1` of them; the chunks'
    characters). `papers[i]`: the feature hashes (uint64, repeats allowed) of paper i."""
    n = len(papers)
    sizes = np.fromiter((len(a) for a in papers), dtype=np.int64, count=n)
    return encode_joined(np.concatenate(papers) if n else np.zeros(0, dtype=np.uint64), sizes)


def encode_joined(hashes: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, bytes]:
    """`encode_day` of the papers' hashes one after another (`sizes[i]` of paper i)."""
    n = len(sizes)
    owner = np.repeat(np.arange(n, dtype=np.uint64), sizes)
    folded = hashes.astype(np.uint64) >> np.uint64(64 - FINE_BITS - KEY_BITS)  # chunk, key
    if n < 1 << 24:  # chunk, key and paper in one 64-bit number: one sort, repeats dropped
        both = np.sort((folded << np.uint64(24)) | owner)
        keep = np.ones(len(both), dtype=bool)
        keep[1:] = both[1:] != both[:-1]
        both = both[keep]
        features, paper = both >> np.uint64(24), (both & np.uint64(0xFFFFFF)).astype(np.int64)
    else:
        order = np.lexsort((owner, folded))
        features, owners = folded[order], owner[order]
        keep = np.ones(len(features), dtype=bool)
        keep[1:] = (features[1:] != features[:-1]) | (owners[1:] != owners[:-1])
        features, paper = features[keep], owners[keep].astype(np.int64)
    new = np.ones(len(features), dtype=bool)
    new[1:] = features[1:] != features[:-1]
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(features)))
    unique = features[starts]
    chunk = (unique >> np.uint64(KEY_BITS)).astype(np.int64)
    key = unique & _KEY_MASK
    first = np.ones(len(unique), dtype=bool)
    first[1:] = chunk[1:] != chunk[:-1]
    gap = key.copy()
    gap[1:] = np.where(first[1:], key[1:], key[1:] - key[:-1] - np.uint64(1))
    dense = 6 * counts > n
    of_posting = np.repeat(np.arange(len(unique)), counts)
    sparse_posting = ~dense[of_posting]
    paper_gap = np.empty_like(paper)  # a feature's first paper, then the gaps
    paper_gap[1:] = paper[1:] - paper[:-1] - 1
    paper_gap[new] = paper[new]
    width = -(-n // 6)
    dense_rows = np.cumsum(dense) - 1
    dense_posting = ~sparse_posting
    bits = np.bincount(
        dense_rows[of_posting[dense_posting]] * width + paper[dense_posting] // 6,
        weights=1 << (paper[dense_posting] % 6),
        minlength=int(dense.sum()) * width,
    ).astype(np.int64)
    sections = [
        (*_varints(np.bincount(chunk, minlength=FINE).astype(np.uint64)), np.arange(FINE)),
        (*_varints(gap), chunk),
        (*_varints((counts.astype(np.uint64) << np.uint64(1)) | dense), chunk),
        (*_varints(paper_gap[sparse_posting].astype(np.uint64)), chunk[of_posting][sparse_posting]),
        (_CODES[bits], np.full(int(dense.sum()), width, dtype=np.int64), chunk[dense]),
    ]
    return _interleave(sections)


def _interleave(
    sections: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, bytes]:
    """Each section's characters (items in chunk order: chars, length of each item, its
    chunk) placed so chunk j holds section 0's part, then section 1's ... (no sorting)."""
    per_chunk = np.array(
        [np.bincount(ch, weights=ln, minlength=FINE) for _, ln, ch in sections], dtype=np.int64
    )
    totals = per_chunk.sum(axis=0)
    offsets = np.zeros(FINE + 1, dtype=np.int64)
    np.cumsum(totals, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    before = np.zeros(FINE, dtype=np.int64)  # this section's start inside each chunk
    for (chars, _, _), mine in zip(sections, per_chunk, strict=True):
        flat_start = np.zeros(FINE, dtype=np.int64)  # chunk j's part in `chars`
        np.cumsum(mine[:-1], out=flat_start[1:])
        base = offsets[:-1] + before - flat_start
        # chunk j's characters are one run in `chars` (items come in chunk order)
        out[np.arange(len(chars)) + np.repeat(base, mine)] = chars
        before += mine
    return offsets, out.tobytes()


class _Reader:
    def __init__(self, text: str, at: int = 0) -> None:
        self.text, self.at = text, at

    def varint(self) -> int:
        value = 0
        while True:
            d = _VALUE[self.text[self.at]]
            self.at += 1
            value = value * 32 + (d & 31)
            if d < 32:
                return value


def decode_chunks(text: str, chunks: int, papers: int, at: int = 0) -> tuple[dict, int]:
    """`chunks` chunks of a day of `papers` papers from `text[at:]`: ({(chunk, key):
    papers}, where they end). The reference reader of the layout above."""
    out: dict[tuple[int, int], list[int]] = {}
    r = _Reader(text, at)
    width = -(-papers // 6)
    for c in range(chunks):
        n = r.varint()
        keys, key = [], -1
        for _ in range(n):
            key = key + 1 + r.varint()
            keys.append(key)
        metas = [r.varint() for _ in range(n)]
        for k, meta in zip(keys, metas, strict=True):
            if not meta & 1:
                got, p = [], -1
                for _ in range(meta >> 1):
                    p = p + 1 + r.varint()
                    got.append(p)
                out[(c, k)] = got
        for k, meta in zip(keys, metas, strict=True):
            if meta & 1:
                field = r.text[r.at : r.at + width]
                r.at += width
                out[(c, k)] = [
                    6 * i + b for i, ch in enumerate(field) for b in range(6) if _VALUE[ch] >> b & 1
                ]
    return out, r.at
