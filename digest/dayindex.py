"""The day's paper index, built once and shared by every ranking shard of `digest worker`.

A shard (`work.rank_shard`) ranks its readers against one index of the papers since its
oldest reader's window (`send._plan`). Made from the kept terms (`send.stored_index`),
that is each shard reading every paper's blob (some 6 KB) and scanning them all for
its readers' features. Instead, the first shard that finds no index covering its papers
inverts their blobs into postings (`rank.postings.make_blocks`: every feature of every
paper, by hash) and keeps them as one row (`Store.share_day_index`; a shard asking
meanwhile waits for it and then finds it made); every shard then reads its own
features' postings from that row (`rank.postings.wanted_terms`) and builds its index
from them (`rank.prepare(kept=...)`). Those are the terms `stored_index` would have
taken from the blobs, so the index, and every ranking, is the same.

It holds every feature, not only the union of the due readers' features. At 2,000
papers (bench/day_index.py, PostgreSQL, CPU-s of the shard + its server backend) a
shard's index cost 0.33 built from the blobs, 0.16 loaded from this index, 0.09 from one
of the union: 0.07 less a shard, but making that one means reading every due reader's
profile first (some 0.15 ms a reader: 7 CPU-s for a shard of 50,000), and a keyword
a reader adds later is not in it. The first shard, which makes this one, pays 0.7.

When it is used:

- it is kept under `index_key`: this module's layout and the code of the postings and
  packed layouts, and the analysis (`rank.terms_key`: the analyzer's code, the synonyms).
  No ranking setting is in it: it holds counts, which no setting changes (k1, b and the
  field weights apply when a shard builds its own index from them);
- only for a shard whose papers it covers: a paper arrived since it was made, and the
  next shard makes it again; a paper whose text changed since has counts of another
  text (its blob is read instead, as for the store's postings);
- not above `MAX_BYTES` (some 2.5 KB a paper: 4.9 MB at 2,000 papers, against 11.3 MB
  of blobs each shard read before): such a window is indexed by each shard as before.

Layout: `numpy.savez` arrays, read back with `allow_pickle=False` and checked:

    format  int64 [1]        FORMAT
    ids     uint8            the indexed papers' ids, a JSON list of strings
    places  int64 (n, 2)     each paper's block and slot
    text    uint8 (n, 8)     its text hash (`rank.packed.text_hash`)
    words   int64 (n, 2)     its title's and abstract's word counts
    bits    int64 (blocks)   each block's bucket bits
    cells   int64 (rows)     each bucket row's block * CELLS + bucket, ascending
    ends    int64 (rows)     where each row ends in `data`
    data    uint8            the rows (`rank.postings`' bucket layout), one after another
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digest import rank
from digest.config import Config
from digest.errors import StoreError
from digest.model import Paper
from digest.rank import packed, postings
from digest.rank.postings import BLOCK_PAPERS, MAX_BITS, KeptCounts, make_blocks
from digest.rank.terms import PaperTerms
from digest.send import Window, stored_index
from digest.store import Store
from digest.window import StoredBlobs

if TYPE_CHECKING:
    from digest.rank.dense import DenseDay

log = logging.getLogger("digest.worker")
#: The layout above; part of every key.
FORMAT = 1
#: A row's cell: block * CELLS + bucket (buckets are fewer than 2**MAX_BITS).
CELLS = 1 << MAX_BITS
#: The largest index kept for the shards to share (some 27,000 papers).
MAX_BYTES = 64 << 20


@functools.cache
def _code_hash() -> str:
    """A hash of the code that makes and reads an index (this module, the layouts)."""
    h = hashlib.blake2b(digest_size=8)
    for module in (postings, packed):
        h.update(Path(module.__file__ or "").read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def index_key(synonyms: Mapping[str, Sequence[str]] | None) -> str:
    """The key an index of this code and analysis is kept under."""
    return f"day{FORMAT}:{_code_hash()}:{rank.terms_key(synonyms)}"


@dataclass(frozen=True, slots=True)
class DayIndex:
    """Every feature's postings in some papers, in `rank.postings`' bucket rows."""

    counts: dict[str, KeptCounts]  #: paper id -> where its postings are, its counts
    cells: np.ndarray  #: each row's cell (block * CELLS + bucket), ascending
    ends: np.ndarray  #: where each row ends in `data`
    data: np.ndarray  #: the rows, uint8

    def rows(self, wanted: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """The rows of these (block, bucket) cells (missing: no feature in that bucket)."""
        asked = np.fromiter((b * CELLS + k for b, k in wanted), np.int64, count=len(wanted))
        at = np.searchsorted(self.cells, asked)
        out: dict[tuple[int, int], bytes] = {}
        for cell, i in zip(asked.tolist(), at.tolist(), strict=True):
            if i < len(self.cells) and self.cells[i] == cell:
                start = int(self.ends[i - 1]) if i else 0
                out[divmod(cell, CELLS)] = self.data[start : int(self.ends[i])].tobytes()
        return out

    def terms(self, papers: Sequence[Paper], wanted: Collection[str]) -> list[PaperTerms | None]:
        """Each paper's terms of the `wanted` features (`postings.wanted_terms`): None
        for a paper it does not hold, or holds with another text."""
        return postings.wanted_terms(papers, self.counts, self.rows, wanted)


def build(papers: Sequence[Paper], blobs: Mapping[str, bytes]) -> bytes:
    """The index of these papers (in row order) from their kept blobs, encoded: the
    papers without a packed blob are left out (a shard reads their blobs)."""
    blocks = make_blocks((p.id, blobs[p.id]) for p in papers if p.id in blobs)
    ids: list[str] = []
    places, text, words = [], [], []
    cells: list[int] = []
    rows: list[bytes] = []
    for number, block in enumerate(blocks):
        for pid, slot, hashed, title_words, abstract_words in block.papers:
            ids.append(pid)
            places.append((number, slot))
            text.append(np.frombuffer(hashed, np.uint8))
            words.append((title_words, abstract_words))
        for bucket, row in block.rows:
            cells.append(number * CELLS + bucket)
            rows.append(row)
    order = np.argsort(np.asarray(cells, np.int64), kind="stable")
    sizes = np.asarray([len(rows[i]) for i in order.tolist()], np.int64)
    out = io.BytesIO()
    np.savez(
        out,
        format=np.asarray([FORMAT], np.int64),
        ids=np.frombuffer(json.dumps(ids).encode(), np.uint8),
        places=np.asarray(places, np.int64).reshape(-1, 2),
        text=np.asarray(text, np.uint8).reshape(-1, 8),
        words=np.asarray(words, np.int64).reshape(-1, 2),
        bits=np.asarray([b.bits for b in blocks], np.int64),
        cells=np.asarray(cells, np.int64)[order],
        ends=np.cumsum(sizes),
        data=np.frombuffer(b"".join(rows[i] for i in order.tolist()), np.uint8),
    )
    return out.getvalue()


def decode(data: bytes) -> DayIndex | None:
    """The index `build` encoded, or None when `data` is not one (another layout, damaged)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as found:
            a = {name: found[name] for name in found.files}
        return _checked(a)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return None


def _checked(a: dict[str, np.ndarray]) -> DayIndex | None:
    """The index of `build`'s arrays, or None when they do not fit together."""
    if a["format"].tolist() != [FORMAT] or a["data"].dtype != np.uint8:
        return None
    ids = json.loads(a["ids"].tobytes())
    places, text, words, bits = a["places"], a["text"], a["words"], a["bits"]
    cells, ends, data = a["cells"], a["ends"], a["data"]
    n, r = len(ids), len(cells)
    if (places.shape, text.shape, words.shape, ends.shape) != ((n, 2), (n, 8), (n, 2), (r,)):
        return None
    if not all(isinstance(i, str) for i in ids):
        return None
    if n and not (places.min() >= 0 and places[:, 0].max() < len(bits)):
        return None
    if n and places[:, 1].max() >= BLOCK_PAPERS:
        return None
    if len(bits) and not (bits.min() >= 0 and bits.max() <= MAX_BITS):
        return None
    if r and (np.any(np.diff(cells) <= 0) or np.any(np.diff(ends) < 0) or ends[-1] != len(data)):
        return None
    raw, bits_of = text.tobytes(), bits.tolist()
    counts = {
        pid: KeptCounts(block, slot, bits_of[block], raw[8 * j : 8 * j + 8], tw, aw)
        for j, (pid, (block, slot), (tw, aw)) in enumerate(
            zip(ids, places.tolist(), words.tolist(), strict=True)
        )
    }
    return DayIndex(counts, cells.astype(np.int64), ends.astype(np.int64), data)


def shared_index(
    config: Config,
    store: Store,
    now: datetime,
    window: Window,
    wanted: set[str],
    dense: DenseDay | None,
) -> rank.Prepared:
    """A shard's index of its window (`send.Indexer`): from the day index that covers
    it, made now if none does; from the kept terms when none can be shared."""
    synonyms = config.synonyms or None
    key, terms_key = index_key(synonyms), rank.terms_key(synonyms)
    index = _shared(store, key, terms_key, now, window)
    if index is None:
        return stored_index(config, store, now, window, wanted, dense)
    papers = window.papers
    kept = index.terms(papers, wanted)
    lacking = [p.id for p, got in zip(papers, kept, strict=True) if got is None]
    blobs = StoredBlobs(store, terms_key, [p.id for p in papers], lacking)
    settings = config.ranking
    return rank.prepare(papers, now, settings, synonyms, blobs, wanted, dense, kept=kept)


def _shared(
    store: Store, key: str, terms_key: str, now: datetime, window: Window
) -> DayIndex | None:
    """The day index that covers `window`: the kept one, else one made now (the others
    wait for it) and kept; None when it cannot be (too big, or the wait failed)."""
    found = store.day_index(key)
    if found is not None and found.covers(window.low, window.high):
        got = decode(found.data)
        if got is not None:
            return got

    def make(low: int, high: int) -> bytes | None:
        same = (low, high) == (window.low, window.high)
        papers = window.papers if same else [p for _, p in store.arrivals(low, high)]
        data = build(papers, store.paper_terms([p.id for p in papers], terms_key))
        return data if len(data) <= MAX_BYTES else None

    try:
        shared = store.share_day_index(key, window.low, window.high, now, make)
    except StoreError as exc:  # waited past the store's timeout: index it here
        log.warning("the day's paper index: %s", exc)
        return None
    return decode(shared.data) if shared is not None else None
