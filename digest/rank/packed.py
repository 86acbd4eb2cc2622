"""A paper's kept terms packed for ranking: features as 64-bit hashes, counts as small
integers, no text, so a day of papers is scanned as one numpy array.

The JSON layout (`terms.encode_json`) spells every feature: finding the few features a
ranking looks up (`wanted`) means decompressing and splitting some 10 KB a paper, about
100 us; a year of the archive is 730,000 papers. Here a ranking hashes its wanted
features once and compares them with every paper's hashes in a few vectorised passes
(`wanted_terms`), a few microseconds a paper. Layout (little-endian, a multiple of 8
bytes, so the blobs of many papers joined are one `uint64` array):

    0   b"PTv2"                  magic (a zlib stream, the JSON layout, never starts so)
    4   8 bytes                  the text hash (`text_hash`: title and abstract)
    12  u32 x 4                  title words, abstract words, title features, abstract's
    28  u8, 3 zero bytes         the width of a count: 1, 2 or 4 bytes
    32  u64 x (nt + na)          the features' hashes: the title's, then the abstract's,
                                 each field's in first-occurrence order
    ..  width x (nt + na)        their counts, in the same order; zeros up to 8 bytes

A hash stands for a feature only if no other feature has it: two features of one paper
with one hash make `pack` refuse (the caller keeps the JSON layout then), and a wanted
feature sharing its hash with some other feature of a paper would need two of the
store's features (some millions) to collide among 2**64 values: about one chance in
10**9 for a thousand wanted features. What a blob cannot give is a paper's features as
text: a ranking of every feature (`terms_for`, no `wanted`) analyses such a paper again.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from digest.model import Paper
from digest.rank.texthash import text_hash as text_hash  # re-exported: blobs hold it

MAGIC = b"PTv2"
_HEAD = struct.Struct("<4s8sIIIIB3x")


def feature_hash(feature: str) -> int:
    """A feature's 64-bit id (blake2b: the same in every process and Python version)."""
    digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def pack(
    text: bytes,
    title: Sequence[str],
    title_counts: Sequence[int],
    title_words: int,
    abstract: Sequence[str],
    abstract_counts: Sequence[int],
    abstract_words: int,
) -> bytes | None:
    """The packed blob of one paper's terms, or None when two of its features (of one
    field) share a hash or a number does not fit (then keep the JSON layout)."""
    hashes = [feature_hash(f) for f in title] + [feature_hash(f) for f in abstract]
    if len(set(hashes[: len(title)])) != len(title) or len(set(hashes[len(title) :])) != len(
        abstract
    ):
        return None
    counts = [*title_counts, *abstract_counts]
    top = max(counts, default=0)
    if top >= 2**32 or min(counts, default=0) < 0 or max(title_words, abstract_words) >= 2**32:
        return None
    width = 1 if top < 2**8 else 2 if top < 2**16 else 4
    head = _HEAD.pack(MAGIC, text, title_words, abstract_words, len(title), len(abstract), width)
    body = np.asarray(hashes, dtype="<u8").tobytes()
    tail = np.asarray(counts, dtype=f"<u{width}").tobytes()
    tail += b"\0" * (-len(tail) % 8)
    return head + body + tail


def is_packed(blob: bytes) -> bool:
    return blob[:4] == MAGIC


#: (title features, their counts, title words, abstract features, counts, abstract words)
Found = tuple[tuple[str, ...], tuple[int, ...], int, tuple[str, ...], tuple[int, ...], int]


def wanted_terms(
    papers: Sequence[Paper], blobs: Sequence[bytes | None], wanted: Collection[str]
) -> list[Found | None]:
    """For each paper (its blob beside it), the wanted features it has in each field with
    their counts (in blob order) and the word counts; None where the blob is missing, not
    packed, damaged or made from another text (the caller decodes or analyses those)."""
    out: list[Found | None] = [None] * len(papers)
    chosen: list[int] = []
    parts: list[bytes] = []
    heads: list[tuple[int, int, int, int, int]] = []
    for j, (paper, blob) in enumerate(zip(papers, blobs, strict=True)):
        if blob is None or blob[:4] != MAGIC or len(blob) < _HEAD.size or len(blob) % 8:
            continue
        _, text, tw, aw, nt, na, width = _HEAD.unpack_from(blob)
        if width not in (1, 2, 4) or len(blob) != _HEAD.size + 8 * (nt + na) + _padded(
            width * (nt + na)
        ):
            continue  # damaged: not what `pack` writes
        if text != text_hash(paper):
            continue
        chosen.append(j)
        parts.append(blob)
        heads.append((tw, aw, nt, na, width))
    if not chosen:
        return out
    names = {feature_hash(f): f for f in wanted}
    found = _scan(b"".join(parts), [len(b) for b in parts], heads, names)
    for k, j in enumerate(chosen):
        tw, aw, _, _, _ = heads[k]
        fields = found.get(k)
        if fields is None:  # most papers of a day: none of the wanted features
            out[j] = ((), (), tw, (), (), aw)
            continue
        title, abstract = fields
        out[j] = (
            tuple([names[h] for h, _ in title]),
            tuple([c for _, c in title]),
            tw,
            tuple([names[h] for h, _ in abstract]),
            tuple([c for _, c in abstract]),
            aw,
        )
    return out


def _padded(n: int) -> int:
    return n + (-n % 8)


def _scan(
    joined: bytes,
    lengths: list[int],
    heads: list[tuple[int, int, int, int, int]],
    names: dict[int, str],
) -> dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]]:
    """Blob k -> ([(hash, count)] of its title, of its abstract) for the wanted hashes it
    holds: every 8-byte word of the joined blobs goes through a table of the hashes' low
    16 bits, then the few candidates are compared whole and placed."""
    if not names:
        return {}
    words = np.frombuffer(joined, dtype="<u8")
    wanted = np.fromiter(names, dtype=np.uint64, count=len(names))
    wanted.sort()
    table = np.zeros(1 << 16, dtype=bool)
    table[(wanted & np.uint64(0xFFFF)).astype(np.intp)] = True
    candidates = np.flatnonzero(table[np.frombuffer(joined, dtype="<u2")[::4]])
    values = words[candidates]
    at = np.minimum(np.searchsorted(wanted, values), len(wanted) - 1)
    hits = candidates[wanted[at] == values]
    if not len(hits):
        return {}
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(np.asarray(lengths[:-1], dtype=np.int64) // 8, out=starts[1:])
    shape = np.asarray(heads, dtype=np.int64)  # tw, aw, nt, na, width per blob
    blob = np.searchsorted(starts, hits, side="right") - 1
    first = starts[blob] + _HEAD.size // 8  # where the blob's hashes begin
    position = hits - first  # the feature's place among the blob's hashes
    n = shape[blob, 2] + shape[blob, 3]
    real = (position >= 0) & (position < n)  # not a head or count word that looks like one
    blob, position, n, hits = blob[real], position[real], n[real], hits[real]
    width = shape[blob, 4]
    at_byte = 8 * (first[real] + n) + width * position
    raw = np.frombuffer(joined, dtype=np.uint8)
    count = raw[at_byte].astype(np.int64)
    for b in (1, 2, 3):  # wider counts: the next bytes, little-endian
        wide = width > b
        count[wide] += raw[at_byte[wide] + b].astype(np.int64) << (8 * b)
    in_title = position < shape[blob, 2]
    out: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}
    for k, title, value, c in zip(
        blob.tolist(), in_title.tolist(), words[hits].tolist(), count.tolist(), strict=True
    ):
        fields = out.get(k)
        if fields is None:
            fields = out[k] = ([], [])
        fields[0 if title else 1].append((value, c))
    return out


#: 8-byte words of the head: a blob's hashes begin at this word.
HEAD_WORDS = _HEAD.size // 8


@dataclass(frozen=True, slots=True)
class Head:
    """A packed blob's head, checked against the blob's length (`head`)."""

    text: bytes  #: the text hash it was made from
    title_words: int
    abstract_words: int
    title_features: int  #: the first this many features are the title's
    features: int  #: the title's and the abstract's
    width: int  #: bytes of a count: 1, 2 or 4


def head(blob: bytes | None) -> Head | None:
    """The head of a packed blob, or None where the blob is missing, not packed or
    damaged (its length is not what the head says): what `unpack` reads, without the
    arrays, for readers of many blobs at once (`find.search_hashes_joined`)."""
    if blob is None or blob[:4] != MAGIC or len(blob) < _HEAD.size or len(blob) % 8:
        return None
    _, text, tw, aw, nt, na, width = _HEAD.unpack_from(blob)
    n = nt + na
    if width not in (1, 2, 4) or len(blob) != _HEAD.size + 8 * n + _padded(width * n):
        return None
    return Head(text, tw, aw, nt, n, width)


def unpack(blob: bytes | None) -> Unpacked | None:
    """Every feature of a packed blob with the head's figures, whatever paper it was made
    for (the caller compares `text` with `text_hash` of the paper as it is now); None
    where the blob is missing, not packed or damaged. What the kept postings are built
    from (`rank.postings`)."""
    got = head(blob)
    if got is None:
        return None
    assert blob is not None
    n, width = got.features, got.width
    hashes = np.frombuffer(blob, dtype="<u8", count=n, offset=_HEAD.size)
    counts = np.frombuffer(blob, dtype=f"<u{width}", count=n, offset=_HEAD.size + 8 * n)
    return Unpacked(
        got.text, got.title_words, got.abstract_words, got.title_features, hashes, counts
    )


@dataclass(frozen=True, slots=True)
class Unpacked:
    """A packed blob's content (`unpack`): arrays read in place, not copied."""

    text: bytes  #: the text hash it was made from
    title_words: int
    abstract_words: int
    title_features: int  #: the first this many of `hashes` are the title's
    hashes: np.ndarray  #: uint64 (little-endian), the title's then the abstract's
    counts: np.ndarray  #: each feature's count in its field


def hashed_terms(paper: Paper, blob: bytes | None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Every feature of a packed blob as (hashes, counts, how many of them are the
    title's), for models over all of a paper's features (`learn`); None where the blob
    is missing, not packed, damaged or made from another text."""
    got = unpack(blob)
    if got is None or got.text != text_hash(paper):
        return None
    return got.hashes.astype(np.uint64), got.counts.astype(np.float32), got.title_features
