"""Paper vectors for the benchmarks and `make eval`, cached on disk so reruns are cheap.

The cache is var/bench-vectors/<model>.npz, one row per distinct text, keyed by the sha256
of `dense.paper_text` (a changed paper or model embeds anew). Only the missing texts are
embedded; the cache is rewritten when any were.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digest.model import Paper
from digest.rank import dense

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "var" / "bench-vectors"


def text_key(text: str) -> str:
    """The cache key of one text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cached_vectors(papers: Sequence[Paper], cache: Path = CACHE) -> dense.DenseDay:
    """The papers' DenseDay, embedding (once) the texts the cache lacks."""
    from digest.rank.encoder import load_encoder

    encoder = load_encoder()
    path = cache / (re.sub(r"[^A-Za-z0-9.@-]+", "_", encoder.model) + ".npz")
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            known = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    texts = [dense.paper_text(p) for p in papers]
    keys = [text_key(t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    if missing:
        for (k, _), vec in zip(missing, encoder.encode([t for _, t in missing]), strict=True):
            known[k] = vec
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    vectors = np.stack([known[k] for k in keys]) if keys else np.zeros((0, dense.DIM))
    # as the store keeps them (float16), so eval measures what a digest gets
    vectors = vectors.astype(np.float16).astype(np.float32)
    present = np.ones(len(papers), dtype=bool)
    return dense.DenseDay(vectors, present, encoder.encode, encoder.model)
