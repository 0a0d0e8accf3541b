"""The finance lexicon: VADER plus a finance layer, score −1..1, label, event type.

VADER reads general English; headlines speak finance ("beats", "cuts to Hold", "pulls
outlook"). The finance layer adds market valences to VADER's lexicon and recognises event
phrases, which both classify the event and push the score in the direction the market
reads them. Its reading is three of the learned scorer's columns (`feeds.scorer`), which
is what the gateway scores headlines with, and its event rules name every headline's
event. No I/O; the analyser is built once per process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

Label = Literal["positive", "negative", "neutral"]

# Valences on VADER's −4..4 scale for words whose market meaning VADER lacks or misreads.
FINANCE_LEXICON: dict[str, float] = {
    "beat": 1.8,
    "beats": 1.8,
    "tops": 1.5,
    "topped": 1.5,
    "exceeds": 1.5,
    "miss": -1.8,
    "misses": -1.8,
    "missed": -1.8,
    "upgrade": 2.0,
    "upgrades": 2.0,
    "upgraded": 2.0,
    "outperform": 1.6,
    "overweight": 1.2,
    "downgrade": -2.0,
    "downgrades": -2.0,
    "downgraded": -2.0,
    "underperform": -1.6,
    "underweight": -1.2,
    "sell-rated": -1.5,
    "surge": 2.0,
    "surges": 2.0,
    "soar": 2.2,
    "soars": 2.2,
    "jumps": 1.8,
    "rallies": 1.8,
    "rally": 1.6,
    "climbs": 1.4,
    "gains": 1.4,
    "rises": 1.2,
    "higher": 0.8,
    "record": 1.2,
    "plunge": -2.4,
    "plunges": -2.4,
    "tumbles": -2.2,
    "slumps": -2.0,
    "sinks": -2.0,
    "falls": -1.4,
    "drops": -1.4,
    "slides": -1.4,
    "lower": -0.8,
    "declines": -1.2,
    "cut": -1.2,
    "cuts": -1.2,
    "slashes": -1.8,
    "trimmed": -1.0,
    "trims": -1.0,
    "raises": 1.0,
    "raised": 1.0,
    "boosts": 1.4,
    "hikes": 1.0,
    "bullish": 2.0,
    "bearish": -2.0,
    "headwinds": -1.2,
    "tailwinds": 1.2,
    "approval": 1.8,
    "approves": 1.8,
    "approved": 1.8,
    "rejects": -1.8,
    "rejection": -2.0,
    "recall": -1.8,
    "recalls": -1.8,
    "lawsuit": -1.6,
    "sues": -1.6,
    "sued": -1.6,
    "probe": -1.4,
    "investigation": -1.2,
    "fraud": -2.6,
    "bankruptcy": -3.0,
    "layoffs": -1.4,
    "delisted": -2.4,
    "default": -2.0,
    "writedown": -1.8,
    "dividend": 0.8,
    "buyback": 1.2,
    "profit": 1.0,
    "loss": -1.2,
    "losses": -1.2,
    "sink": -2.0,
    "dip": -1.2,
    "dips": -1.2,
    "slid": -1.4,
    "slump": -2.0,
    "tumble": -2.2,
    "halts": -1.4,
    "sour": -1.4,
    "slams": -1.2,
    "selloff": -1.6,
    "recession": -1.8,
    "rise": 1.2,
    "grew": 1.2,
    "growth": 1.0,
    "rebound": 1.4,
    "rebounds": 1.4,
    "highs": 1.2,
}

# (event type, pattern, push on the score): the first match names the event.
# Each rule's words (any of them, lower case) must be in the text before its pattern is
# tried: a cheap test that the pattern needs anyway, and most headlines fail it.
EVENT_RULES: tuple[tuple[str, re.Pattern[str], float, tuple[str, ...]], ...] = tuple(
    (event, re.compile(pattern, re.IGNORECASE), push, words)
    for event, pattern, push, words in (
        (
            "earnings",
            r"\b(beats?|tops?|topped|exceeds?)\b.*\b(estimates?|expectations|views?|"
            r"consensus|eps|revenue|earnings|profit)",
            0.45,
            ("beat", "top", "exceed"),
        ),
        (
            "earnings",
            r"\b(miss(es|ed)?|falls? short)\b.*\b(estimates?|expectations|views?|"
            r"consensus|eps|revenue|earnings)",
            -0.45,
            ("miss", "short"),
        ),
        (
            "guidance",
            r"\b(raises?|boosts?|lifts?|ups)\b.*\b(guidance|outlook|forecast)",
            0.4,
            ("guidance", "outlook", "forecast"),
        ),
        (
            "guidance",
            r"\b(cuts?|lowers?|slashes|pulls?|withdraws?|trims?)\b.*"
            r"\b(guidance|outlook|forecast)",
            -0.45,
            ("guidance", "outlook", "forecast"),
        ),
        (
            "fda",
            r"\bFDA\b.*\b(approv\w*|clear\w*|grants?)\b|\b(approv\w*|clear\w*)\b.*\bFDA\b",
            0.45,
            ("fda",),
        ),
        (
            "fda",
            r"\bFDA\b.*\b(reject\w*|declin\w*|complete response|refus\w*)\b"
            r"|\b(reject\w*)\b.*\bFDA\b",
            -0.5,
            ("fda",),
        ),
        (
            "rating",
            r"\bupgrade[sd]?\b|\braised? to (buy|outperform|overweight)\b",
            0.4,
            ("upgrade", "raise"),
        ),
        (
            "rating",
            r"\bdowngrade[sd]?\b|\bcuts? to (hold|neutral|sell|underperform|"
            r"underweight|market perform|equal.weight)\b|\bturns? negative\b",
            -0.4,
            ("downgrade", "cut", "turn"),
        ),
        (
            "rating",
            r"\b(price )?targets? (raised|lifted|boosted|increased)\b"
            r"|\b(raises|lifts|boosts) (price )?target",
            0.3,
            ("target",),
        ),
        (
            "rating",
            r"\b(price )?targets? (cut|trimmed|lowered|slashed|reduced)\b"
            r"|\b(cuts|trims|lowers) (price )?target",
            -0.3,
            ("target",),
        ),
        (
            "m&a",
            r"\b(to acquire|acquires|acquisition of|to buy|buyout|merger|takeover|"
            r"deal to (buy|acquire))\b",
            0.25,
            ("acqui", "to buy", "buyout", "merger", "takeover", "deal to"),
        ),
        (
            "lawsuit",
            r"\b(lawsuit|sues|sued|class action|antitrust|probe|investigation)\b",
            -0.35,
            ("lawsuit", "sue", "class action", "antitrust", "probe", "investigation"),
        ),
        ("recall", r"\brecalls?\b", -0.4, ("recall",)),
        (
            "product",
            r"\b(launch(es|ed)?|unveils?|rolls out|introduces)\b",
            0.2,
            ("launch", "unveil", "rolls out", "introduces"),
        ),
    )
)

# Quoted price moves ("+7%", "shares down 4%") push the score without naming an event.
MOVE_RULES: tuple[tuple[re.Pattern[str], float, tuple[str, ...]], ...] = (
    (
        re.compile(
            r"(^|\s)\+\d+(\.\d+)?%|\b(up|rises?|gains?|jumps?|climbs?|soars?)\s+"
            r"\d+(\.\d+)?%",
            re.IGNORECASE,
        ),
        0.4,
        ("%",),
    ),
    (
        re.compile(
            r"(^|[\s(])-\d+(\.\d+)?%|\b(down|dips?|falls?|drops?|slides?|slid|sinks?|"
            r"loses?|lost|plunges?|tumbles?)\s+(approximately\s+)?\d+(\.\d+)?%",
            re.IGNORECASE,
        ),
        -0.4,
        ("%",),
    ),
    (
        re.compile(
            r"\b(started|initiated|rated|resumed) (at )?(buy|outperform|overweight)\b",
            re.IGNORECASE,
        ),
        0.4,
        ("buy", "outperform", "overweight"),
    ),
)

_NOISE = re.compile(r"https?://\S+|\$[A-Za-z.]+|#\w+|@\w+")
_NEUTRAL_BAND = 0.35  # chosen on the labelled set (bench/sentiment.py)
# A text longer than this is read up to here: news text is untrusted, and the event rules'
# patterns cost time quadratic in a text's length (a 72,000-character one took 36 s).
MAX_CHARACTERS = 1000


@dataclass(frozen=True)
class Sentiment:
    """A scored headline."""

    score: float  # −1..1
    label: Label
    event_type: str | None


def label_for(score: float, band: float) -> Label:
    """Positive above `band`, negative below `-band`, else neutral."""
    if score >= band:
        return "positive"
    if score <= -band:
        return "negative"
    return "neutral"


@lru_cache(maxsize=1)
def _analysers() -> tuple[SentimentIntensityAnalyzer, SentimentIntensityAnalyzer]:
    plain = SentimentIntensityAnalyzer()
    finance = SentimentIntensityAnalyzer()
    finance.lexicon.update(FINANCE_LEXICON)
    return plain, finance


def vader(text: str) -> float:
    """Plain VADER compound score, the baseline the finance scorer is measured against."""
    return _analysers()[0].polarity_scores(text)["compound"]


def score(text: str) -> Sentiment:
    """Sentiment of one headline (or headline plus summary), read up to `MAX_CHARACTERS`."""
    clean = _NOISE.sub(" ", text[:MAX_CHARACTERS])
    compound = _analysers()[1].polarity_scores(clean)["compound"]
    event, push, lower = None, 0.0, clean.lower()
    for name, pattern, weight, words in EVENT_RULES:
        if any(w in lower for w in words) and pattern.search(clean):
            event, push = name, weight
            break
    push += sum(
        weight
        for pattern, weight, words in MOVE_RULES
        if any(w in lower for w in words) and pattern.search(clean)
    )
    value = max(-1.0, min(1.0, 0.7 * compound + push))
    return Sentiment(round(value, 4), label_for(value, _NEUTRAL_BAND), event)
