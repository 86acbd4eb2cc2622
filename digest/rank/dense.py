"""The optional semantic layer: paper vectors, keyword vectors, and how they join the
lexical score. Pure numpy; the model itself is `rank.encoder` (the `semantic` extra).

Lexical stays primary. Each keyword k of a profile is also compared by meaning: the cosine
of its vector to each paper's, as a z-score against the day's papers for that keyword,

    z(k, p) = (cos(k, p) - mean_day cos(k, .)) / std_day cos(k, .)

and a paper far above that background (z >= `RankSettings.dense_z`) gets evidence

    meaning(k, p) = min(0.99, dense_credit * z / dense_z)      (0 below dense_z)

which joins the keyword's lexical score s(k, p) as one more piece of evidence in a noisy
OR: s' = 1 - (1 - s)(1 - meaning) (`fuse`). Everything after that is the lexical ranker's
(keyword weights, the OR across keywords, the cut-off, max_items), so a paper no keyword
matches can be *admitted by meaning* when it is far closer to a keyword than the day's
papers are, a weak match can be lifted, and a paper at the background gets nothing. A
z-score, not a raw cosine: a sentence embedding's cosines sit in a band that depends on the
keyword (a short acronym vs a long phrase), so only "far above this keyword's usual" is
comparable. Per keyword, not one vector per profile: a profile's keywords are
alternatives (measured on the dev set: the mean of a profile's keyword vectors, or its
keywords embedded as one text, rescue fewer relevant papers at the same z).
The constants are tuned by `make eval`, with leave-one-profile-out figures (README).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from digest.model import Paper

#: Width of the stored vectors (all-MiniLM-L6-v2).
DIM = 384
#: texts -> unit vectors (n x DIM float32): the encoder, or a stand-in in tests.
EmbedFn = Callable[[Sequence[str]], np.ndarray]


def paper_text(paper: Paper) -> str:
    """What a paper's vector is made from: its title, then its abstract."""
    title = paper.title.strip()
    if not paper.abstract:
        return title
    joint = "" if title.endswith((".", "?", "!", ":")) else "."
    return f"{title}{joint} {paper.abstract.strip()}"


def encode_vector(vector: np.ndarray) -> bytes:
    """A unit vector as the store keeps it: float16, little-endian (768 bytes for 384)."""
    return np.asarray(vector, dtype="<f2").tobytes()


def encode_keyword(vector: np.ndarray) -> bytes:
    """A keyword's unit vector as the store keeps it: float32, little-endian, exactly as
    the model made it (so a kept keyword ranks as a freshly embedded one)."""
    return np.asarray(vector, dtype="<f4").tobytes()


def decode_keyword(blob: bytes, dim: int = DIM) -> np.ndarray | None:
    """A kept keyword vector, or None when the blob is not one of `dim` floats."""
    if len(blob) != 4 * dim:
        return None
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def decode_vectors(
    papers: Sequence[Paper], blobs: Mapping[str, bytes], dim: int = DIM
) -> tuple[np.ndarray, np.ndarray]:
    """The papers' vectors as one float32 matrix (a row per paper, zeros where a paper has
    no valid blob) and which rows are present."""
    out = np.zeros((len(papers), dim), dtype=np.float32)
    present = np.zeros(len(papers), dtype=bool)
    for j, paper in enumerate(papers):
        blob = blobs.get(paper.id)
        if blob is not None and len(blob) == 2 * dim:
            out[j] = np.frombuffer(blob, dtype="<f2")
            present[j] = True
    return out, present


@dataclass
class DenseDay:
    """The semantic layer's side of one ranking: the papers' vectors (in `Prepared` order)
    and a way to embed keywords, with the keyword vectors found so far."""

    vectors: np.ndarray  #: papers x DIM float32, unit rows (zeros where absent)
    present: np.ndarray  #: bool per paper: has a vector
    embed: EmbedFn
    model: str = ""
    #: keyword text -> its unit vector; shared by every profile ranked on this day
    keyword_vectors: dict[str, np.ndarray] = field(default_factory=dict)

    def keyword_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per keyword text (len(texts) x DIM), each embedded once."""
        missing = sorted({t for t in texts if t not in self.keyword_vectors})
        if missing:
            for text, vec in zip(missing, self.embed(missing), strict=True):
                self.keyword_vectors[text] = np.asarray(vec, dtype=np.float32)
        if not texts:
            return np.zeros((0, self.vectors.shape[1]), dtype=np.float32)
        return np.stack([self.keyword_vectors[t] for t in texts])


def day_z(sim: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Each similarity as a z-score against its row's day (the papers with vectors); 0
    where a paper has none, or the day is too small to have a spread."""
    z = np.zeros_like(sim)
    n = int(present.sum())
    if n < 3:
        return z
    got = sim[:, present]
    mean = got.mean(axis=1, keepdims=True)
    std = got.std(axis=1, keepdims=True)
    z[:, present] = (got - mean) / np.maximum(std, 1e-6)
    return z


def meaning_from_z(z: np.ndarray, threshold: float, credit: float) -> np.ndarray:
    """A keyword's evidence from meaning alone (module docstring): 0 below `threshold`,
    `credit` at it, growing in proportion to z above it (capped below 1)."""
    m = credit * z / max(threshold, 1e-9)
    return np.where(z >= threshold, np.minimum(m, 0.99), 0.0).astype(np.float32)


def keyword_meaning(
    day: DenseDay, texts: Sequence[str | None], threshold: float, credit: float
) -> sp.csr_matrix:
    """m(k, p) for each keyword text (None: a plan without one) and paper, sparse: only
    the pairs whose z reaches `threshold` are kept (a handful per keyword and day)."""
    rows = [i for i, t in enumerate(texts) if t is not None]
    shape = (len(texts), len(day.present))
    if not rows or not day.present.any() or credit <= 0:
        return sp.csr_matrix(shape, dtype=np.float32)
    unique = sorted({t for t in texts if t is not None})
    at = {t: u for u, t in enumerate(unique)}
    z = day_z(day.keyword_matrix(unique) @ day.vectors.T, day.present)
    hit_u, hit_p = np.nonzero(z >= threshold)
    by_text: dict[int, list[int]] = {}
    for u, j in zip(hit_u.tolist(), hit_p.tolist(), strict=True):
        by_text.setdefault(u, []).append(j)
    r: list[int] = []
    c: list[int] = []
    v: list[np.ndarray] = []
    for i, text in enumerate(texts):
        if text is None:
            continue
        u = at[text]
        cols = by_text.get(u, [])
        r += [i] * len(cols)
        c += cols
        v.append(meaning_from_z(z[u, cols], threshold, credit))
    data = np.concatenate(v) if v else np.zeros(0, np.float32)
    return sp.csr_matrix((data, (r, c)), shape=shape, dtype=np.float32)


def fuse(lexical: sp.csr_matrix, meaning: sp.csr_matrix) -> sp.csr_matrix:
    """The one place the two signals meet: per keyword and paper,
    s = 1 - (1 - lexical)(1 - meaning), a noisy OR like the one across keywords."""
    fused = (lexical + meaning - lexical.multiply(meaning)).tocsr()
    fused.data = np.minimum(fused.data, 0.999).astype(np.float32)
    fused.eliminate_zeros()
    return fused.astype(np.float32)


def dense_similarity(day: DenseDay | None, texts: Sequence[str]) -> np.ndarray | None:
    """Cosine of each text (a keyword, or a profile's keywords joined) to each paper
    (len(texts) x papers float32; 0 where a paper has no vector), or None without the
    semantic layer: a feature for learners that use it when present."""
    if day is None:
        return None
    sim = day.keyword_matrix(list(texts)) @ day.vectors.T
    sim[:, ~day.present] = 0.0
    return sim
