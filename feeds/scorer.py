"""The learned headline scorer: a linear model over hashed word and character n-grams,
plus the finance lexicon's own reading, beside a small convolutional network over word
vectors, both trained on labelled financial headlines.

Features of the linear model (the same code trains and scores, so they cannot drift):
- the headline normalised: links dropped, cashtags made one token (`$t`), digits made 0;
- three blocks of hashed columns, `BLOCK` each: words and word pairs; their Snowball
  stems and stem pairs (so "cuts", "cutting" and "cut" share a column); character 3- to
  5-grams;
- sublinear term frequency times the training set's inverse document frequency (zero for
  an n-gram training never saw: it carries no weight, so it must not dilute the rest),
  each block scaled to unit length on its own (the many character grams do not drown the
  few words);
- three columns from the lexicon scorer (`feeds.sentiment.score`): its score, and
  whether it reads the headline as positive or negative.

The network (`feeds/convolution.py`) reads the same words, each as a vector, so a word the
linear model never saw still counts; its logits join the linear model's decision values
at `convolution.WEIGHT`.

The model is `headline-model.npz` beside this module (a few MB, in the repository, never
downloaded): one weight row per class (bearish, bullish, neutral), the idf, the network's
vocabulary, word vectors and weights, and the figures measured when it was trained.
`feeds/train_scorer.py` makes it. Scoring needs numpy and PyStemmer only; the event type
still comes from the lexicon's event rules.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import Stemmer

from feeds.convolution import WEIGHT, Convolution
from feeds.sentiment import MAX_CHARACTERS, Label, Sentiment
from feeds.sentiment import score as lexicon_score

MODEL = Path(__file__).with_name("headline-model.npz")
BLOCK = 1 << 17  # hashed columns per block: words, stems, characters
BLOCKS = 3
BUCKETS = BLOCKS * BLOCK
LABELS: tuple[Label, ...] = ("negative", "positive", "neutral")  # the data's 0, 1, 2
CHAR_GRAMS = (3, 4, 5)
LEXICON_WEIGHT = 1.0  # the lexicon columns' scale beside the unit-length blocks
SHARPNESS = 3.0  # decision values → class shares for the −1..1 score

_LINK = re.compile(r"https?://\S+")
_CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z.]{0,6}\b")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[a-z0-9']+|[%+\-$]")
_PRIME = np.uint64(1_000_003)
_SALT = {n: np.uint64(zlib.crc32(f"char{n}".encode())) for n in CHAR_GRAMS}
_STEMMERS = threading.local()  # a Snowball stemmer keeps state: one for each thread


def stems(words: list[str]) -> list[str]:
    """The English Snowball stem of each word."""
    stemmer = getattr(_STEMMERS, "stemmer", None)
    if stemmer is None:
        stemmer = _STEMMERS.stemmer = Stemmer.Stemmer("english", 0)  # 0.3 µs a word: no cache
    return stemmer.stemWords(words)


def normalise(text: str) -> str:
    """The text the n-grams are read from."""
    text = _CASHTAG.sub(" $t ", _LINK.sub(" ", text[:MAX_CHARACTERS]))
    return " ".join(_DIGITS.sub("0", text.lower()).split())


def _terms(words: list[str], single: str, pair: str) -> list[int]:
    """The hashed columns, within one block, of each word and each pair of neighbours."""
    found = [zlib.crc32(f"{single}{w}".encode()) % BLOCK for w in words]
    return found + [zlib.crc32(f"{pair}{a} {b}".encode()) % BLOCK for a, b in pairwise(words)]


@dataclass(frozen=True)
class Parsed:
    """Texts as both readers see them: normalised, and split into words."""

    cleans: list[str]
    words: list[list[str]]


def parse(texts: Sequence[str]) -> Parsed:
    """Each text normalised, and its words."""
    cleans = [normalise(text) for text in texts]
    return Parsed(cleans, [_WORD.findall(clean) for clean in cleans])


def ngrams(parsed: Parsed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hashed n-gram columns of each text, as rows (the text's index), columns and
    sublinear term frequencies, sorted by row then column; many texts in one pass."""
    keys: list[int] = []
    owners: list[int] = []
    for row, words in enumerate(parsed.words):
        found = _terms(words, "w", "b") + [BLOCK + k for k in _terms(stems(words), "s", "p")]
        keys += found
        owners += [row] * len(found)
    parts = [np.array(keys, dtype=np.uint64)]
    rows = [np.array(owners, dtype=np.int64)]
    padded = [f" {clean} ".encode() for clean in parsed.cleans]
    data = np.frombuffer(b"".join(padded), dtype=np.uint8).astype(np.uint64)
    owner = np.repeat(np.arange(len(padded)), [len(p) for p in padded])
    with np.errstate(over="ignore"):  # a rolling hash: wrapping is the point
        h = (data[:-2] * _PRIME + data[1:-1]) * _PRIME + data[2:]  # every 3-gram…
        for n in CHAR_GRAMS:
            inside = owner[: len(h)] == owner[n - 1 : n - 1 + len(h)]  # not across texts
            parts.append((h[inside] + _SALT[n]) % np.uint64(BLOCK) + np.uint64(2 * BLOCK))
            rows.append(owner[: len(h)][inside])
            h = h[:-1] * _PRIME + data[n:]  # …grows into the (n+1)-grams
    columns = np.concatenate(parts).astype(np.int64)
    found, counts = np.unique(np.concatenate(rows) * BUCKETS + columns, return_counts=True)
    return found // BUCKETS, found % BUCKETS, 1.0 + np.log(counts)


def unit_blocks(
    rows: np.ndarray, columns: np.ndarray, values: np.ndarray, count: int
) -> np.ndarray:
    """The tf-idf `values` of `count` texts' n-gram columns, each text's every block
    scaled to unit length on its own."""
    blocks = BLOCKS * rows + columns // BLOCK  # (text, block)
    length = np.sqrt(np.bincount(blocks, values * values, minlength=BLOCKS * count))
    length[length == 0] = 1.0
    return values / length[blocks]


def lexicon_columns(reading: Sentiment) -> tuple[float, float, float]:
    """The lexicon scorer's reading as the model's last three columns."""
    positive, negative = reading.label == "positive", reading.label == "negative"
    return (LEXICON_WEIGHT * reading.score, LEXICON_WEIGHT * positive, LEXICON_WEIGHT * negative)


@dataclass(frozen=True)
class HeadlineModel:
    """Weights of the learned scorer, laid out for scoring one headline at a time."""

    table: np.ndarray  # (BUCKETS, 4): per n-gram column, its weight for each class and its idf
    lexicon: np.ndarray  # (3, 3): per class, the lexicon columns' weights
    intercept: np.ndarray  # (3,)
    convolution: Convolution  # the second reader, over word vectors

    @classmethod
    def load(cls, path: Path = MODEL) -> HeadlineModel:
        """The model in `path`."""
        with np.load(path) as saved:
            weights, idf = saved["weights"], saved["idf"]
            table = np.column_stack([weights[:, :BUCKETS].T, idf]).astype(np.float32)
            return cls(
                np.ascontiguousarray(table),
                weights[:, BUCKETS:].astype(np.float64),
                saved["intercept"].astype(np.float64),
                Convolution.from_arrays(saved),
            )

    def decisions(self, texts: Sequence[str], readings: Sequence[Sentiment]) -> np.ndarray:
        """Decision values, one row per text and one column per class (bearish, bullish,
        neutral)."""
        parsed = parse(texts)
        rows, columns, tf = ngrams(parsed)
        weights = self.table[columns]
        count = len(texts)
        values = unit_blocks(rows, columns, tf * weights[:, 3], count)
        part = np.column_stack(
            [np.bincount(rows, values * weights[:, k], minlength=count) for k in range(3)]
        )
        lexicon = np.array([lexicon_columns(r) for r in readings]).reshape(count, 3)
        words = WEIGHT * self.convolution.logits(parsed.words)
        return part + lexicon @ self.lexicon.T + self.intercept + words

    def score_many(self, texts: Sequence[str]) -> list[Sentiment]:
        """Sentiment of each headline: the likeliest class, a −1..1 score (the bullish
        share minus the bearish one) and the lexicon's event type. Faster per headline
        the more are scored together."""
        if not texts:
            return []
        readings = [lexicon_score(text) for text in texts]
        values = self.decisions(texts, readings)
        shares = np.exp(SHARPNESS * (values - values.max(axis=1, keepdims=True)))
        shares /= shares.sum(axis=1, keepdims=True)
        score = np.round(shares[:, 1] - shares[:, 0], 4).tolist()
        best = values.argmax(axis=1).tolist()
        return [
            Sentiment(s, LABELS[b], reading.event_type)
            for s, b, reading in zip(score, best, readings, strict=True)
        ]

    def score(self, text: str) -> Sentiment:
        """Sentiment of one headline."""
        return self.score_many([text])[0]


@lru_cache(maxsize=1)
def model() -> HeadlineModel:
    """The shipped model, loaded once per process."""
    return HeadlineModel.load()


def score(text: str) -> Sentiment:
    """Sentiment of one headline by the learned scorer."""
    return model().score(text)


def score_many(texts: Sequence[str]) -> list[Sentiment]:
    """Sentiment of many headlines by the learned scorer, in one pass."""
    return model().score_many(texts)
