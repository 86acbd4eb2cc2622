"""The search index's postings (`digest.publish.postings`): what a day's encoding says is
what its papers hold, chunk by chunk, for sparse and dense features alike."""

from __future__ import annotations

import numpy as np
import pytest

from digest.publish.postings import ALPHABET, FINE, decode_chunks, encode_day, split_hash


@pytest.mark.parametrize("papers", [0, 1, 7, 300])
def test_a_day_decodes_to_the_papers_of_each_feature(papers: int) -> None:
    rng = np.random.default_rng(papers)
    vocab = rng.integers(0, 2**64 - 1, size=3000, dtype=np.uint64, endpoint=True)
    # Zipf-like draws: a few features in most papers (dense), most in one or two.
    day = [vocab[rng.zipf(1.4, size=80) % len(vocab)] for _ in range(papers)]
    offsets, chars = encode_day(day)
    text = chars.decode("ascii")
    assert set(text) <= set(ALPHABET) and len(offsets) == FINE + 1
    want: dict[tuple[int, int], set[int]] = {}
    for i, hashes in enumerate(day):
        for h in hashes.tolist():
            want.setdefault(split_hash(h), set()).add(i)
    got, end = decode_chunks(text, FINE, papers)
    assert end == len(text)
    assert got == {k: sorted(v) for k, v in want.items()}
    if papers == 300:
        assert any(6 * len(v) > papers for v in got.values())  # some dense ones too
    # Any run of chunks can be cut out by the offsets (a month's bucket is such a run).
    for first, last in ((0, 1), (17, 40), (FINE - 5, FINE)):
        part, _ = decode_chunks(text[offsets[first] : offsets[last]], last - first, papers)
        assert part == {(c - first, k): v for (c, k), v in got.items() if first <= c < last}
