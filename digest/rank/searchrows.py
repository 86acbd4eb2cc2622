"""Each paper's searchable feature hashes, kept at ingest beside its terms (`paper_search`).

The archive's search index (`publish.search`) is made of every paper's searchable hashes
(`find.search_hashes_joined`: the title's features, and the abstract's used
`find.ABSTRACT_MIN_COUNT` times or more). Reading them out of the kept blobs means
reading some 5.6 KB a paper (every feature, its count) to keep a fifth of it: for a year
from scratch 4 GB and a tenth of the publish's CPU. So ingest keeps them too, once per
blob (`rows_of_blobs`, with the postings: `store.postings`), and the publish reads these
rows (some 0.67 KB a paper) and only falls back to the blob, or the text, for a paper
without a row that still fits (`joined_hashes`).

A row is made from a packed blob (a JSON blob gets none) and says which text it was made
from, so a paper whose text changed since is never indexed by its old features:

    0   b"PSH" + u8            magic, and the bits of each hash kept (`BITS`)
    4   8 bytes                the text hash of the blob (`texthash`)
    12  5 bytes x n            the top `BITS` bits of each searchable hash, little-endian,
                               in `search_hashes_joined`'s order

Only the top 40 bits are kept: the index uses no more of a hash (`publish.postings`: 12
bits of chunk, 28 of key), so the rows give it the very same postings; a layout that
used more bits would find `BITS` different and read the blobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from digest.model import Paper
from digest.rank import packed
from digest.rank.analyzer import Analyzer
from digest.rank.find import _packed_search_hashes, search_hashes_joined

#: The bits of each hash a row keeps (the search index's `FINE_BITS + KEY_BITS`).
BITS = 40
_BYTES = BITS // 8
MAGIC = b"PSH" + bytes([BITS])
_HEAD = len(MAGIC) + 8
_TOP = np.uint64(((1 << BITS) - 1) << (64 - BITS))


def rows_of_blobs(blobs: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """(paper id, search row) of each packed, sound blob among (paper id, blob) pairs (a
    JSON or damaged blob gets none: its paper's hashes come from the blob or text)."""
    chosen = [
        (pid, blob)
        for pid, blob in blobs
        if len(blob) >= 32 and not len(blob) % 8 and blob[:4] == packed.MAGIC
    ]
    if not chosen:
        return []
    joined = b"".join([blob for _, blob in chosen])
    lengths = np.fromiter((len(b) for _, b in chosen), dtype=np.int64, count=len(chosen))
    texts = b"".join([blob[4:12] for _, blob in chosen])
    fits, hashes, sizes = _packed_search_hashes(joined, lengths, texts)
    top = (hashes >> np.uint64(64 - BITS)).astype("<u8")
    body = np.ascontiguousarray(top.view(np.uint8).reshape(-1, 8)[:, :_BYTES]).tobytes()
    ends = (np.cumsum(sizes) * _BYTES).tolist()
    out = []
    start = 0
    for k, end in zip(fits.tolist(), ends, strict=True):
        pid, blob = chosen[k]
        out.append((pid, MAGIC + blob[4:12] + body[start:end]))
        start = end
    return out


def joined_hashes(
    papers: Sequence[Paper],
    rows: Mapping[str, bytes],
    analyzer: Analyzer,
    blobs: Mapping[str, bytes] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`find.search_hashes_joined` of `papers` (their hashes with only the top `BITS`
    bits, the rest zero: what the search index reads of them), from their search rows
    where one was made from the text they have now, else from their blobs or texts."""
    good: list[bytes] = []
    missing: list[int] = []
    for i, paper in enumerate(papers):
        row = rows.get(paper.id)
        if (
            row is not None
            and row[:4] == MAGIC
            and not (len(row) - _HEAD) % _BYTES
            and row[4:_HEAD] == packed.text_hash(paper)
        ):
            good.append(row)
        else:
            missing.append(i)
    sizes = (np.fromiter(map(len, good), dtype=np.int64, count=len(good)) - _HEAD) // _BYTES
    # Each hash read as the 8 bytes that end with its 5 (the 3 before it are the previous
    # hash's, or padding), then those low 3 bytes cleared: one strided pass, no copy.
    padded = bytes(8 - _BYTES) + b"".join([r[_HEAD:] for r in good])
    count = (len(padded) - (8 - _BYTES)) // _BYTES
    hashes = np.ndarray((count,), dtype="<u8", buffer=padded, strides=(_BYTES,)) & _TOP
    if not missing:
        return hashes, sizes
    rest_hashes, rest_sizes = search_hashes_joined([papers[i] for i in missing], analyzer, blobs)
    rest_hashes = (rest_hashes >> np.uint64(64 - BITS)) << np.uint64(64 - BITS)
    parts = np.split(hashes, np.cumsum(sizes)[:-1]) if len(good) else []
    rest = np.split(rest_hashes, np.cumsum(rest_sizes)[:-1]) if missing else []
    ordered: list[np.ndarray] = []
    of_missing = dict(zip(missing, rest, strict=True))
    stored = iter(parts)
    for i in range(len(papers)):
        ordered.append(of_missing[i] if i in of_missing else next(stored))
    all_sizes = np.fromiter((len(a) for a in ordered), dtype=np.int64, count=len(ordered))
    joined = np.concatenate(ordered) if ordered else np.zeros(0, dtype=np.uint64)
    return joined.astype(np.uint64), all_sizes
