"""A paper's text hash (title and abstract), taken once per paper while it is shared.

The archive hashes every paper it reads several times over: its page fingerprint
(`publish.manifest.paper_key`), the check that its kept postings (`rank.postings`) and
its search hashes (`rank.find`) were made from its text as it is now. Each is a pass over
some 1.5 KB of text, 730,000 times for a year from scratch. Inside
`sharing_text_hashes()` (a chunk of days being built) the hash of each paper object is
taken once and remembered for as long as the block runs; outside it nothing is kept, so
a long-lived process (the scheduler, `digest serve`) holds no memory of papers.

A paper is remembered by its identity (the object itself is held, so its id cannot be
reused by another object while the block runs): a `Paper` is frozen, so the same object
always has the same text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from digest.model import Paper

#: id(paper) -> (paper, its hash), while `sharing_text_hashes` runs (None otherwise).
_shared: dict[int, tuple[Paper, bytes]] | None = None


def compute_text_hash(paper: Paper) -> bytes:
    """8 bytes that change when the paper's title or abstract does (blake2b: the same in
    every process and Python version; ingest keeps it beside a paper's terms)."""
    h = hashlib.blake2b(paper.title.encode("utf-8", "surrogatepass"), digest_size=8)
    h.update(b"\0")  # the hash of title NUL abstract, without joining them first
    h.update((paper.abstract or "").encode("utf-8", "surrogatepass"))
    return h.digest()


def text_hash(paper: Paper) -> bytes:
    """`compute_text_hash(paper)`, taken once per paper inside `sharing_text_hashes`."""
    shared = _shared
    if shared is None:
        return compute_text_hash(paper)
    got = shared.get(id(paper))
    if got is not None:
        return got[1]
    made = compute_text_hash(paper)
    shared[id(paper)] = (paper, made)
    return made


@contextmanager
def sharing_text_hashes() -> Iterator[None]:
    """Remember each paper's text hash until the block ends (blocks may nest: the
    outermost one keeps and then forgets)."""
    global _shared
    if _shared is not None:
        yield
        return
    _shared = {}
    try:
        yield
    finally:
        _shared = None
