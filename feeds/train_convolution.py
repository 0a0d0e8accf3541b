"""Train the headline scorer's convolutional network (`feeds/convolution.py`).

Development only: it needs wordllama's files (its token table and tokenizer, in the PyPI
wheel, nothing downloaded) and the tokenizers and safetensors packages that come with it.
The orchestrator loads only the trained arrays.

Plain numpy: the network is small enough that its gradient fits on a page. Cross-entropy
with balanced class weights, dropout on the pooled responses, Adam, weight decay; all
seeded, so the same headlines give the same network.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from feeds.convolution import (
    DIMENSIONS,
    FILTERS,
    WIDTHS,
    Stream,
    responses,
    strongest,
)

EPOCHS = 8
BATCH = 50
RATE = 1e-3  # Adam's step
DECAY = 1e-4  # weight decay, on every parameter
DROPOUT = 0.5  # share of pooled responses dropped while training
BETAS = (0.9, 0.999)


class WordVectors:
    """wordllama's token table, read as word vectors: a word's is the mean of its tokens'
    rows, scaled to unit length."""

    def __init__(self) -> None:
        spec = importlib.util.find_spec("wordllama")
        if spec is None or spec.origin is None:
            raise RuntimeError("wordllama is not installed: `make install` installs it")
        root = Path(spec.origin).parent
        tables = load_file(str(root / "weights" / "l2_supercat_256.safetensors"))
        (table,) = tables.values()
        self.table = table.astype(np.float32)
        self.tokenizer = Tokenizer.from_file(
            str(root / "tokenizers" / "l2_supercat_tokenizer_config.json")
        )

    def whole_words(self) -> set[str]:
        """The tokenizer's whole-word tokens of two letters or more, lower-cased: English
        words a headline may use that training never saw."""
        return {
            token[1:].lower()
            for token in self.tokenizer.get_vocab()
            if token.startswith("\u2581") and token[1:].isalpha() and len(token) > 2
        }

    def of(self, words: Sequence[str]) -> np.ndarray:
        """One unit-length row per word."""
        encodings = self.tokenizer.encode_batch(list(words), add_special_tokens=False)
        found = np.array([self.table[e.ids].mean(axis=0) for e in encodings], dtype=np.float32)
        return found / np.maximum(np.linalg.norm(found, axis=1, keepdims=True), 1e-9)


@lru_cache(maxsize=1)
def word_vectors() -> WordVectors:
    """The table and tokenizer, read once per process."""
    return WordVectors()


class _Adam:
    """Adam with weight decay over a dict of arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.params = params
        self.first = {k: np.zeros_like(v) for k, v in params.items()}
        self.second = {k: np.zeros_like(v) for k, v in params.items()}
        self.steps = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.steps += 1
        b1, b2 = BETAS
        for name, value in self.params.items():
            grad = grads[name] + DECAY * value
            self.first[name] = b1 * self.first[name] + (1 - b1) * grad
            self.second[name] = b2 * self.second[name] + (1 - b2) * grad * grad
            mean = self.first[name] / (1 - b1**self.steps)
            spread = np.sqrt(self.second[name] / (1 - b2**self.steps))
            value -= RATE * mean / (spread + 1e-8)


def _initial(rng: np.random.Generator, inputs: int) -> dict[str, np.ndarray]:
    pooled = len(WIDTHS) * FILTERS
    fan_in = np.repeat([w * DIMENSIONS for w in WIDTHS], [w * FILTERS for w in WIDTHS])
    shapes = {
        "projection": ((inputs, DIMENSIONS), np.sqrt(1 / inputs)),
        "kernels": ((DIMENSIONS, sum(WIDTHS) * FILTERS), np.sqrt(2 / fan_in)),  # He, per width
        "readout": ((pooled, 3), np.sqrt(1 / pooled)),
    }
    params = {
        k: (rng.normal(size=shape) * scale).astype(np.float32)
        for k, (shape, scale) in shapes.items()
    }
    params["bias"] = np.zeros(pooled, dtype=np.float32)
    params["readout_bias"] = np.zeros(3, dtype=np.float32)
    return params


def gradients(
    params: dict[str, np.ndarray],
    table: np.ndarray,
    stream: Stream,
    labels: np.ndarray,
    class_weights: np.ndarray,
    keep: np.ndarray,
) -> tuple[float, dict[str, np.ndarray]]:
    """The weighted cross-entropy of one batch, and its gradient for every parameter.
    `table` holds the batch's vocabulary's unprojected vectors; `keep` is the dropout
    mask over the pooled responses, already scaled (ones: no dropout)."""
    words = table[stream.rows]
    projected = words @ params["projection"]
    found = responses(projected, params["kernels"], params["bias"], stream)
    top = strongest(found, stream)
    pooled = np.maximum(top, 0) * keep
    logits = pooled @ params["readout"] + params["readout_bias"]
    shares = np.exp(logits - logits.max(axis=1, keepdims=True))
    shares /= shares.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    weight = class_weights[labels] / len(labels)
    loss = float(-(weight * np.log(shares[rows, labels])).sum())
    g_logits = shares
    g_logits[rows, labels] -= 1
    g_logits *= weight[:, None]
    g_top = (g_logits @ params["readout"].T) * keep * (top > 0)
    owner = np.repeat(np.arange(len(labels)), stream.spans)
    hits = found == top[owner]  # where each maximum was found (ties share it)
    g_found = hits * (g_top / np.add.reduceat(hits, stream.starts, axis=0))[owner]
    g_each = np.zeros((len(words), params["kernels"].shape[1]), dtype=projected.dtype)
    column = 0
    for j, width in enumerate(WIDTHS):
        for k in range(width):
            g_each[k:, column : column + FILTERS] += g_found[
                : len(words) - k, j * FILTERS : (j + 1) * FILTERS
            ]
            column += FILTERS
    g_projected = g_each @ params["kernels"].T
    return loss, {
        "projection": words.T @ g_projected,
        "kernels": projected.T @ g_each,
        "bias": g_found.sum(axis=0),
        "readout": pooled.T @ g_logits,
        "readout_bias": g_logits.sum(axis=0),
    }


def fit(words: Sequence[Sequence[str]], labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The network trained on these headlines (their words) and labels, as the arrays
    `Convolution.from_arrays` reads. Its vocabulary: the training words and wordllama's
    whole-word tokens."""
    source = word_vectors()
    vocabulary = sorted(source.whole_words() | {w for ws in words for w in ws})
    index = {w: i + 1 for i, w in enumerate(vocabulary)}
    table = np.vstack([np.zeros((1, source.table.shape[1]), np.float32), source.of(vocabulary)])
    rng = np.random.default_rng(seed)
    params = _initial(rng, table.shape[1])
    adam = _Adam(params)
    class_weights = len(labels) / (3 * np.bincount(labels, minlength=3))
    for _ in range(EPOCHS):
        order = rng.permutation(len(labels))
        for begin in range(0, len(order), BATCH):
            batch = order[begin : begin + BATCH]
            stream = Stream.of([words[i] for i in batch], index)
            keep = (rng.random((len(batch), len(WIDTHS) * FILTERS)) >= DROPOUT) / (1 - DROPOUT)
            _, grads = gradients(
                params, table, stream, labels[batch], class_weights, keep.astype(np.float32)
            )
            adam.step(grads)
    return {
        "vocabulary": np.array("\n".join(vocabulary)),
        "vectors": table[1:] @ params["projection"],
        "kernels": params["kernels"],
        "kernel_bias": params["bias"],
        "readout": params["readout"],
        "readout_bias": params["readout_bias"],
    }
