"""Sentiment accuracy on a labelled set of financial headlines: finance scorer vs plain VADER.

The set is `../shared/data/financial-headlines/sent_valid.csv`: 2,388 English finance
headlines and tweets (Twitter Financial News, validation split; 0 bearish, 1 bullish,
2 neutral). Plain VADER uses the ±0.05 thresholds of its authors.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from bench.figures import Figure
from feeds.sentiment import label_for, score, vader

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "financial-headlines"
    / "sent_valid.csv"
)
LABELS = {"0": "negative", "1": "positive", "2": "neutral"}


def load(path: Path = DATA) -> list[tuple[str, str]]:
    """(text, label) pairs."""
    with path.open(newline="") as f:
        return [(row["text"], LABELS[row["label"]]) for row in csv.DictReader(f)]


def evaluate(rows: list[tuple[str, str]], predict: Callable[[str], str]) -> tuple[float, float]:
    """Accuracy and macro-F1 of `predict` on `rows`."""
    predictions = [(predict(text), truth) for text, truth in rows]
    accuracy = sum(p == t for p, t in predictions) / len(predictions)
    f1s = []
    for label in ("negative", "positive", "neutral"):
        tp = sum(p == label == t for p, t in predictions)
        fp = sum(p == label != t for p, t in predictions)
        fn = sum(t == label != p for p, t in predictions)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return accuracy, sum(f1s) / len(f1s)


def scorers() -> dict[str, Callable[[str], str]]:
    return {
        "plain VADER (±0.05)": lambda text: label_for(vader(text), 0.05),
        "finance scorer": lambda text: score(text).label,
    }


def sentiment() -> list[Figure]:
    """Accuracy and macro-F1 of both scorers on the labelled set."""
    rows = load()
    figures = []
    for name, predict in scorers().items():
        accuracy, macro_f1 = evaluate(rows, predict)
        detail = f"{len(rows)} labelled headlines"
        figures.append(Figure(f"sentiment accuracy, {name}", accuracy, "", "", None, detail))
        figures.append(Figure(f"sentiment macro-F1, {name}", macro_f1, "", "", None, detail))
    return figures
