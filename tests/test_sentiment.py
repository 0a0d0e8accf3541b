"""The offline finance sentiment scorer: events, labels, and its measured edge over VADER."""

import pytest

from bench.sentiment import DATA, evaluate, load, scorers
from feeds.sentiment import score


@pytest.mark.parametrize(
    ("headline", "label", "event"),
    [
        ("Apple beats fiscal Q3 estimates as iPhone revenue climbs", "positive", "earnings"),
        ("Pfizer misses revenue expectations on weak vaccine sales", "negative", "earnings"),
        ("FDA approves Vertex's gene therapy for sickle cell disease", "positive", "fda"),
        ("FDA rejects Moderna's application, citing trial data", "negative", "fda"),
        ("Goldman upgrades Caterpillar to Buy", "positive", "rating"),
        ("$SAN: Deutsche Bank cuts to Hold", "negative", "rating"),
        ("Boeing cuts full-year guidance after delivery halt", "negative", "guidance"),
        ("Exxon to acquire Pioneer in $60 billion deal", "neutral", "m&a"),
        ("Tesla recalls 2 million vehicles over Autopilot", "negative", "recall"),
        ("Shareholders file class action lawsuit against Roku", "negative", "lawsuit"),
        ("Meta unveils new AI glasses", "neutral", "product"),
        ("Walmart to hold annual meeting on June 5", "neutral", None),
    ],
)
def test_headlines_get_their_label_and_event(headline, label, event):
    result = score(headline)
    assert (result.label, result.event_type) == (label, event)
    assert -1 <= result.score <= 1


def test_urls_and_cashtags_do_not_move_the_score():
    plain = score("Macy's Q3 same-store sales down 3.5%")
    noisy = score("$M Macy's Q3 same-store sales down 3.5% https://t.co/abc #retail")
    assert plain == noisy


def test_finance_scorer_beats_plain_vader_on_the_labelled_headlines():
    if not DATA.exists():
        pytest.skip(f"labelled set not found at {DATA}")
    rows = load()
    (vader_acc, vader_f1), (ours_acc, ours_f1) = (evaluate(rows, f) for f in scorers().values())
    assert len(rows) == 2388
    assert ours_acc > vader_acc + 0.1 and ours_f1 > vader_f1 + 0.05
