"""The headline scorer's second reader: a small convolutional network over word vectors.

The n-gram model knows only the words its training headlines used. This network reads each
word as a vector of `DIMENSIONS` numbers made from pretrained ones, so a word that training
never saw still reads like the words it resembles. Filters over one, two and three
neighbouring words respond at every place in a headline; each filter's strongest response
(max-pooling, through a ReLU) and a linear readout give one logit per class, added to the
n-gram model's decision values at `WEIGHT`. It is Kim's sentence CNN (2014) with static
vectors.

The vectors: each word's mean token vector in wordllama's 256-dimension table (MIT
licence), projected by a matrix learned with the filters, so the model file holds only the
projected rows, one per word of its vocabulary. A word outside it reads as zeros.

This module is the forward pass, shared by training (`feeds/train_convolution.py`) and
scoring, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

WIDTHS = (1, 2, 3)  # words a filter reads at once
FILTERS = 100  # filters of each width
DIMENSIONS = 32  # numbers in a projected word vector
WEIGHT = 0.2  # the logits' weight beside the n-gram model's decision values
_PADDING = max(WIDTHS) - 1  # zero vectors after each headline: no window reads the next one
_WEIGHTS = ("kernels", "kernel_bias", "readout", "readout_bias")


@dataclass(frozen=True)
class Stream:
    """Many headlines' words as one column of vocabulary rows (row 0 is the zero vector:
    padding, or a word outside the vocabulary). Each headline's words come first, at least
    one row, then `_PADDING` zero rows."""

    rows: np.ndarray  # (positions,)
    starts: np.ndarray  # (headlines,): where each headline's rows begin
    spans: np.ndarray  # (headlines,): its rows, padding included
    lengths: np.ndarray  # (headlines,): its words

    @classmethod
    def of(cls, words: Sequence[Sequence[str]], index: Mapping[str, int]) -> Stream:
        """The stream of `words`, one list per headline, looked up in `index` (word → row)."""
        lengths = np.array([len(w) for w in words], dtype=np.int64)
        spans = np.maximum(lengths, 1) + _PADDING
        starts = np.cumsum(spans) - spans
        rows = np.zeros(int(spans.sum()), dtype=np.int64)
        found = [
            (start + i, index.get(w, 0))
            for start, ws in zip(starts, words, strict=True)
            for i, w in enumerate(ws)
        ]
        if found:
            where, row = np.array(found).T
            rows[where] = row
        return cls(rows, starts, spans, lengths)

    def window_starts(self, width: int) -> np.ndarray:
        """Whether a window of `width` words starts at each position: within its
        headline's words, or at its first position when it has fewer."""
        offset = np.arange(len(self.rows)) - np.repeat(self.starts, self.spans)
        return offset <= np.repeat(np.maximum(self.lengths - width, 0), self.spans)


def responses(
    vectors: np.ndarray, kernels: np.ndarray, bias: np.ndarray, stream: Stream
) -> np.ndarray:
    """Every filter's response at every position of `stream` (its rows' `vectors`), −inf
    where no window of the filter's width starts: (positions, filters of every width, width
    by width). `kernels` holds, width by width and within a width word by word, the
    `FILTERS` columns that read that word."""
    each = vectors @ kernels  # every word through every filter's every word slot, at once
    found = np.empty((len(each), len(WIDTHS) * FILTERS), dtype=each.dtype)
    column = 0
    for j, width in enumerate(WIDTHS):
        these = found[:, j * FILTERS : (j + 1) * FILTERS]
        these[:] = bias[j * FILTERS : (j + 1) * FILTERS]
        for k in range(width):
            these[: len(each) - k] += each[k:, column : column + FILTERS]  # the k-th word
            column += FILTERS
        these[~stream.window_starts(width)] = -np.inf
    return found


def strongest(found: np.ndarray, stream: Stream) -> np.ndarray:
    """Each headline's strongest response of each filter, before the ReLU: (headlines,
    filters of every width)."""
    return np.maximum.reduceat(found, stream.starts, axis=0)


@dataclass(frozen=True)
class Convolution:
    """The trained network, ready to score."""

    index: dict[str, int]  # word → row of `vectors`
    vectors: np.ndarray  # (words + 1, DIMENSIONS); row 0 the zero vector
    kernels: np.ndarray  # (DIMENSIONS, sum(WIDTHS) * FILTERS): see `responses`
    bias: np.ndarray  # (len(WIDTHS) * FILTERS,)
    readout: np.ndarray  # (len(WIDTHS) * FILTERS, 3)
    readout_bias: np.ndarray  # (3,)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Convolution:
        """The network in a model file's arrays (or training's): `vocabulary`, one word a
        line, and `vectors`, one row per word, then the filters' and readout's weights."""
        vocabulary = str(arrays["vocabulary"]).split("\n")
        vectors = np.asarray(arrays["vectors"], dtype=np.float32)
        return cls(
            {word: row for row, word in enumerate(vocabulary, 1)},
            np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors]),
            *(np.asarray(arrays[k], dtype=np.float32) for k in _WEIGHTS),
        )

    def logits(self, words: Sequence[Sequence[str]]) -> np.ndarray:
        """One row per headline (its words), one logit per class (bearish, bullish,
        neutral)."""
        stream = Stream.of(words, self.index)
        found = responses(self.vectors[stream.rows], self.kernels, self.bias, stream)
        return np.maximum(strongest(found, stream), 0) @ self.readout + self.readout_bias
