"""The kept postings: which papers hold a feature, and how often, so that ranking a day
for a few profiles reads only the postings of their features.

A kept blob (`rank.packed`) is a paper's forward index: some 600 features and 5.6 KB a
paper. Ranking the archive's days for its few profiles read every paper's blob to find
the dozens of features the profiles look up (~80 us a paper: most of a year's ranking),
although most papers hold none of them. So the store also keeps the inverted form,
built from the same blobs whenever it keeps some (`make_blocks`):

- a *block* is the papers of one keep (one ingest's new papers; at most `BLOCK_PAPERS`),
  each with a *slot* (its place in the block), its text hash and word counts (what BM25F
  needs of every paper: `KeptCounts`);
- the block's features are cut by the low `bits` of their hash into buckets (some
  `BUCKET_ENTRIES` postings each; `bits` grows with the block), and each bucket is one
  row: its features' hashes, sorted, and for each its postings: the slot of a paper
  that holds it, the field (title or abstract) and the count there (`_encode`; some
  2.1 KB a paper in all).

So a ranking of known features reads the papers' counts (a few dozen bytes each) and the
one bucket of each wanted feature in each block (`wanted_terms`), and decodes nothing
else. The search over the archive (issue 12) can read the same buckets by feature hash.

A posting stands for its paper only while the paper's counts row names its block and
slot (a paper kept again moves to a new block: its old postings are dead, and a block
with no paper left is deleted) and the counts' text hash is the paper's: the caller
falls back to the blob for any paper without valid counts, so postings can only save
time, never change a ranking. The features are the blob's hashes: what `packed` says of
collisions holds here too.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from digest.model import Paper
from digest.rank import packed
from digest.rank.terms import PaperTerms

#: The most papers in one block (a slot and the field bit share 16 bits).
BLOCK_PAPERS = 4096
#: The most entries in one block: an entry's number fits in `_ENTRY_BITS` bits.
_ENTRY_BITS = 22
BLOCK_ENTRIES = 1 << _ENTRY_BITS
#: About this many entries share a bucket row (some 3 KB).
BUCKET_ENTRIES = 1024
#: Buckets of a block at most: 2**MAX_BITS.
MAX_BITS = 14
#: An entry's field bit: set for the abstract, clear for the title.
ABSTRACT = 1 << 15
#: A bucket row's head: features, entries, the byte width of a count; padded to 16 bytes
#: so that the hashes after it are aligned.
_HEAD = struct.Struct("<IIB7x")


class KeptCounts(NamedTuple):
    """One paper's row beside its postings: where they are, and its word counts (a named
    tuple: a day's ranking reads 2,000 of them, a year's publish 730,000, and a tuple is
    made at a fraction of a frozen dataclass's cost)."""

    block: int
    slot: int
    bits: int  #: the block's bucket bits
    text: bytes  #: the text hash the postings were made from (`packed.text_hash`)
    title_words: int
    abstract_words: int


@dataclass(frozen=True, slots=True)
class PostingsBlock:
    """The postings of some papers, to keep as one block (`make_blocks`)."""

    bits: int
    #: (paper id, slot, text hash, title words, abstract words) of each paper
    papers: tuple[tuple[str, int, bytes, int, int], ...]
    #: (bucket, row) of each non-empty bucket
    rows: tuple[tuple[int, bytes], ...]


def make_blocks(blobs: Iterable[tuple[str, bytes]]) -> list[PostingsBlock]:
    """The postings of the papers whose blobs are packed (the others have none: ranking
    reads their blobs), in the order given: at most `BLOCK_PAPERS` papers and
    `BLOCK_ENTRIES` entries a block."""
    blocks: list[PostingsBlock] = []
    batch: list[tuple[str, packed.Unpacked]] = []
    entries = 0
    for pid, blob in blobs:
        got = packed.unpack(blob)
        if got is None:
            continue
        if batch and (len(batch) == BLOCK_PAPERS or entries + len(got.hashes) > BLOCK_ENTRIES):
            blocks.append(_block(batch))
            batch, entries = [], 0
        batch.append((pid, got))
        entries += len(got.hashes)
    if batch:
        blocks.append(_block(batch))
    return blocks


def _block(found: Sequence[tuple[str, packed.Unpacked]]) -> PostingsBlock:
    sizes = np.fromiter((len(u.hashes) for _, u in found), np.int64, count=len(found))
    hashes = np.concatenate([u.hashes for _, u in found]).astype(np.uint64)
    counts = np.concatenate([u.counts for _, u in found]).astype(np.uint32)
    n = len(hashes)
    codes = np.repeat(np.arange(len(found), dtype=np.uint16), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    titles = np.repeat([u.title_features for _, u in found], sizes)
    codes[np.arange(n) - starts >= titles] |= np.uint16(ABSTRACT)
    bits = min(MAX_BITS, max(0, math.ceil(math.log2(max(1.0, n / BUCKET_ENTRIES)))))
    order, first = _feature_order(hashes, bits)
    hashes, codes, counts = hashes[order], codes[order], counts[order]
    f_at = np.flatnonzero(first)
    f_hash = hashes[f_at]
    f_end = np.append(f_at[1:], n)
    f_bucket = (f_hash & np.uint64((1 << bits) - 1)).astype(np.int64)
    cuts = [0, *(np.flatnonzero(np.diff(f_bucket)) + 1).tolist(), len(f_hash)]
    rows = []
    for lo, hi in itertools.pairwise(cuts):
        e_lo, e_hi = int(f_at[lo]), int(f_end[hi - 1])
        rows.append(
            (
                int(f_bucket[lo]),
                _encode(f_hash[lo:hi], f_end[lo:hi] - e_lo, codes[e_lo:e_hi], counts[e_lo:e_hi]),
            )
        )
    papers = tuple(
        (pid, slot, u.text, u.title_words, u.abstract_words) for slot, (pid, u) in enumerate(found)
    )
    return PostingsBlock(bits, papers, tuple(rows))


def _feature_order(hashes: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The order of a block's entries by bucket (the low `bits` of the hash), then hash,
    then entry (so a feature's entries are in slot order, a title's before the
    abstract's), and where each feature starts in it.

    Sorted as one array of keys (numpy sorts values several times faster than it
    argsorts them): the hash rotated so that its bucket comes first, its last
    `_ENTRY_BITS` bits replaced by the entry's number. Two features sharing the rest of
    their hash would be taken for one: checked, and then sorted by the whole hash."""
    n = len(hashes)
    rotated = (hashes >> np.uint64(bits)) | (hashes << np.uint64(64 - bits)) if bits else hashes
    low = np.uint64((1 << _ENTRY_BITS) - 1)
    keys = (rotated & ~low) | np.arange(n, dtype=np.uint64)
    keys.sort()
    order = (keys & low).astype(np.int64)
    prefix = keys >> np.uint64(_ENTRY_BITS)
    first = np.ones(n, dtype=bool)
    first[1:] = prefix[1:] != prefix[:-1]
    ordered = hashes[order]
    if np.any(~first[1:] & (ordered[1:] != ordered[:-1])):  # a shared prefix: very rare
        order = np.argsort(rotated, kind="stable")
        ordered = rotated[order]
        first[1:] = ordered[1:] != ordered[:-1]
    return order, first


def _encode(hashes: np.ndarray, ends: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> bytes:
    """One bucket row (little-endian): the head, the features' hashes (u64, ascending),
    the end of each one's entries (u32), then each entry's slot and field (u16: the slot,
    `ABSTRACT` for the abstract) and its count (`width` bytes), zero-padded to 8 bytes."""
    top = int(counts.max()) if len(counts) else 0
    width = 1 if top < 2**8 else 2 if top < 2**16 else 4
    data = b"".join(
        (
            _HEAD.pack(len(hashes), len(codes), width),
            hashes.astype("<u8").tobytes(),
            ends.astype("<u4").tobytes(),
            codes.astype("<u2").tobytes(),
            counts.astype(f"<u{width}").tobytes(),
        )
    )
    return data + b"\0" * (-len(data) % 8)


def _decode(row: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A bucket row's (hashes, entry ends, entry codes, counts)."""
    nf, ne, width = _HEAD.unpack_from(row)
    at = _HEAD.size
    hashes = np.frombuffer(row, "<u8", nf, at)
    ends = np.frombuffer(row, "<u4", nf, at + 8 * nf)
    codes = np.frombuffer(row, "<u2", ne, at + 12 * nf)
    counts = np.frombuffer(row, f"<u{width}", ne, at + 12 * nf + 2 * ne)
    return hashes, ends, codes, counts


#: Reads the rows of some (block, bucket) pairs: the store's `posting_rows`.
RowsFn = Callable[[Collection[tuple[int, int]]], Mapping[tuple[int, int], bytes]]


def wanted_terms(
    papers: Sequence[Paper],
    counts: Mapping[str, KeptCounts],
    rows_for: RowsFn,
    wanted: Collection[str],
) -> list[PaperTerms | None]:
    """Each paper's terms narrowed to the `wanted` features (each field's sorted, with
    their counts, and the word counts), from its kept counts and the postings of the
    wanted features: what `terms_wanted` and `index.build_index(wanted=...)` make of its
    blob. None for a paper without counts, or with counts of another text (the caller
    reads its blob instead)."""
    # Each paper's terms are made once: its word counts wait in `words` until its hits
    # are known (a day's 2,000 papers, a year's 730,000).
    words: list[tuple[int, int] | None] = [None] * len(papers)
    columns: dict[int, np.ndarray] = {}  # block -> the column of each slot (-1: none)
    bits_of: dict[int, int] = {}
    for j, paper in enumerate(papers):
        got = counts.get(paper.id)
        if got is None or got.text != packed.text_hash(paper):
            continue
        if got.block not in columns:
            columns[got.block] = np.full(BLOCK_PAPERS, -1, np.int64)
            bits_of[got.block] = got.bits
        columns[got.block][got.slot] = j
        words[j] = (got.title_words, got.abstract_words)
    out: list[PaperTerms | None] = [None] * len(papers)
    names = sorted(wanted)
    if names and columns:
        _found(out, words, columns, bits_of, rows_for, names)
    for j, counted in enumerate(words):
        if counted is not None and out[j] is None:  # counted, none of the wanted features
            out[j] = PaperTerms((), (), counted[0], (), (), counted[1])
    return out


def _found(
    out: list[PaperTerms | None],
    words: list[tuple[int, int] | None],
    columns: dict[int, np.ndarray],
    bits_of: dict[int, int],
    rows_for: RowsFn,
    names: list[str],
) -> None:
    """The terms of the papers (by column) that have some of the wanted features `names`,
    from the postings of the blocks in `columns`, put into `out`."""
    hashes = np.fromiter((packed.feature_hash(f) for f in names), np.uint64, count=len(names))
    needed: dict[tuple[int, int], np.ndarray] = {}  # (block, bucket) -> its wanted features
    for block, bits in bits_of.items():
        buckets = (hashes & np.uint64((1 << bits) - 1)).astype(np.int64)
        for bucket in np.unique(buckets).tolist():
            needed[(block, bucket)] = np.flatnonzero(buckets == bucket)
    cols: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    tfs: list[np.ndarray] = []
    features: list[np.ndarray] = []
    for cell, row in rows_for(list(needed)).items():
        sought = needed.get(cell)
        if sought is None:
            continue
        found, ends, code, count = _decode(row)
        at = np.minimum(np.searchsorted(found, hashes[sought]), max(len(found) - 1, 0))
        for f, k in zip(sought.tolist(), at.tolist(), strict=True):
            if not len(found) or found[k] != hashes[f]:
                continue
            lo, hi = int(ends[k - 1]) if k else 0, int(ends[k])
            slot_codes = code[lo:hi]
            cols.append(columns[cell[0]][slot_codes & (ABSTRACT - 1)])
            codes.append(slot_codes)
            tfs.append(count[lo:hi])
            features.append(np.full(hi - lo, f, np.int64))
    if not cols:
        return
    col, field = np.concatenate(cols), np.concatenate(codes) >= ABSTRACT
    tf, feature = np.concatenate(tfs).astype(np.int64), np.concatenate(features)
    ours = col >= 0
    col, field, tf, feature = col[ours], field[ours], tf[ours], feature[ours]
    order = np.argsort((col * 2 + field) * len(names) + feature, kind="stable")
    _narrowed(
        out,
        words,
        col[order].tolist(),
        field[order].tolist(),
        tf[order].tolist(),
        [names[f] for f in feature[order].tolist()],
    )


def _narrowed(
    out: list[PaperTerms | None],
    words: list[tuple[int, int] | None],
    cols: list[int],
    fields: list[bool],
    tfs: list[int],
    names: list[str],
) -> None:
    """Put each column's hits (sorted by column, field, feature) into its terms, with
    its word counts (`words`)."""
    i, n = 0, len(cols)
    while i < n:
        j = cols[i]
        k = i
        while k < n and cols[k] == j and not fields[k]:
            k += 1
        m = k
        while m < n and cols[m] == j:
            m += 1
        counted = words[j]
        assert counted is not None
        out[j] = PaperTerms(
            tuple(names[i:k]),
            tuple(tfs[i:k]),
            counted[0],
            tuple(names[k:m]),
            tuple(tfs[k:m]),
            counted[1],
        )
        i = m
