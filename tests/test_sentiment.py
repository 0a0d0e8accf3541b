"""Headline sentiment: the finance lexicon's events and labels, and the learned scorer the
gateway uses, against its training and the labelled headlines."""

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from bench.sentiment import evaluate, rows, scorers
from feeds import scorer
from feeds.scorer import HeadlineModel, ngrams, parse, score, score_many
from feeds.sentiment import score as lexicon
from feeds.train_scorer import DATA, DataError, fit, load, predict, read


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
def test_the_lexicon_gives_headlines_their_label_and_event(headline, label, event):
    result = lexicon(headline)
    assert (result.label, result.event_type) == (label, event)
    assert -1 <= result.score <= 1


def test_urls_and_cashtags_do_not_move_the_lexicon():
    plain = lexicon("Macy's Q3 same-store sales down 3.5%")
    noisy = lexicon("$M Macy's Q3 same-store sales down 3.5% https://t.co/abc #retail")
    assert plain == noisy


@pytest.mark.parametrize(
    ("headline", "label"),
    [
        ("Apple beats fiscal Q3 estimates as iPhone revenue climbs", "positive"),
        ("Goldman upgrades Caterpillar to Buy, price target raised", "positive"),
        ("Boeing slashes full-year guidance after delivery halt", "negative"),
        ("Analysts downgrade Johnson & Johnson to Sell on slowing growth", "negative"),
        ("Walmart to hold annual meeting on June 5", "neutral"),
    ],
)
def test_the_learned_scorer_reads_plain_headlines(headline, label):
    result = score(headline)
    assert result.label == label and -1 <= result.score <= 1
    assert (result.score > 0.3) if label == "positive" else True
    assert (result.score < -0.3) if label == "negative" else True
    assert result.event_type == lexicon(headline).event_type  # events stay the lexicon's


def test_hostile_text_scores_without_failing():
    texts = ["", " ", "\x00\x1b[31m<script>", "a" * 100_000, "📉📉 plunge", "$AAPL", "0" * 3]
    results = score_many(texts)
    assert len(results) == len(texts)
    assert all(-1 <= r.score <= 1 and r.label in scorer.LABELS for r in results)
    assert [score(t) for t in texts] == results  # alone or together, the same reading


def test_both_scorers_read_a_text_up_to_its_first_thousand_characters():
    """What lies past them cannot move the reading (news text is untrusted, and the event
    rules' patterns spend time quadratic in a text's length)."""
    calm = ("Walmart to hold its annual meeting on June 5 " * 30)[:1000]
    hostile = calm + " plunges, bankruptcy, fraud, misses estimates" + " beat top" * 500
    assert lexicon(hostile) == lexicon(calm) and lexicon(calm).label == "neutral"
    assert score(hostile) == score(calm)
    assert lexicon(calm + " plunges into bankruptcy").label == "neutral"
    assert lexicon(calm[:900] + " plunges into bankruptcy").label == "negative"


def test_a_batch_reads_each_text_as_it_would_be_read_alone():
    texts = ["Apple beats estimates", "", "ab", "$AAPL up 5% https://t.co/x", "x" * 50]
    rows_, columns, tf = ngrams(parse(texts))
    for i, text in enumerate(texts):
        alone_rows, alone_columns, alone_tf = ngrams(parse([text]))
        assert (columns[rows_ == i] == alone_columns).all() and np.allclose(
            tf[rows_ == i], alone_tf
        )
        assert (alone_rows == 0).all()


def test_inflections_of_a_word_meet_in_the_stem_block_not_the_word_block():
    def block(text, k):
        _rows, columns, _tf = ngrams(parse([text]))
        return set(columns[columns // scorer.BLOCK == k].tolist())

    assert block("Tesla cuts prices", 1) == block("Tesla cutting price", 1)
    assert block("Tesla cuts prices", 0).isdisjoint(
        block("Tesla cutting price", 0) - block("Tesla", 0)
    )
    assert block("Tesla cuts prices", 1) != block("Tesla raises prices", 1)


needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"labelled set not found at {DATA}")


@needs_data
def test_the_shipped_model_is_what_training_on_the_labelled_set_gives(tmp_path):
    """Reproducible: retrained from the repository's script and data, the model gives the
    shipped model's every label (and scoring agrees with training's own prediction)."""
    everything = load(DATA / "sent_train_part.csv", DATA / "sent_valid.csv")
    retrained = fit(everything)
    shipped = HeadlineModel.load()
    valid = load(DATA / "sent_valid.csv")
    guessed = [scorer.LABELS.index(s.label) for s in shipped.score_many(valid.texts)]
    assert (predict(retrained, valid) == np.array(guessed)).mean() > 0.995  # float16 weights


@needs_data
def test_the_learned_scorer_beats_the_lexicon_and_vader_on_held_out_headlines():
    """Trained on sent_train_part.csv alone, read on sent_valid.csv."""
    labelled = rows()
    part = fit(load(DATA / "sent_train_part.csv"))
    valid = load(DATA / "sent_valid.csv")
    learned = dict(zip(valid.texts, predict(part, valid), strict=True))
    names = {0: "negative", 1: "positive", 2: "neutral"}
    learned_acc, learned_f1 = evaluate(labelled, lambda text: names[learned[text]])
    (vader_acc, vader_f1), (lex_acc, lex_f1) = (evaluate(labelled, f) for f in scorers().values())
    assert len(labelled) == 2388
    assert lex_acc > vader_acc + 0.1 and lex_f1 > vader_f1 + 0.05
    assert learned_acc > lex_acc + 0.1 and learned_f1 > lex_f1 + 0.15


def test_check_measures_the_shipped_model_on_headlines_it_never_saw(tmp_path):
    """`python -m feeds.train_scorer --check FILE`: the shipped model's figures on any
    labelled file, as the gateway scores; here five plain headlines and one mislabelled."""
    path = tmp_path / "unseen.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "source", "text"])  # any order, other columns ignored
        writer.writerows(
            [
                (1, "wire", "Apple beats fiscal Q3 estimates as iPhone revenue climbs"),
                (1, "wire", "Goldman upgrades Caterpillar to Buy, price target raised"),
                (0, "wire", "Boeing slashes full-year guidance after delivery halt"),
                (0, "wire", "Analysts downgrade Johnson & Johnson to Sell on slowing growth"),
                (2, "wire", "Walmart to hold annual meeting on June 5"),
                (0, "wire", "Walmart to hold annual meeting on June 5"),  # read as neutral
            ]
        )
    run = subprocess.run(
        [sys.executable, "-m", "feeds.train_scorer", "--check", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    # bearish F1 0.8 (2 of 3 found), bullish 1, neutral 0.667 (one of two right)
    assert json.loads(run.stdout) == {"accuracy": 0.8333, "macro_f1": 0.8222, "headlines": 6}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty, not even a header line"),
        (b"headline,label\nShares jump,1\n", "no column text in its header"),
        (b"text,label\n", "no headlines after the header"),
        (b"text,label\nShares jump,bullish\n", "line 2: label 'bullish' is not 0, 1 or 2"),
        (b"text,label\nShares jump,1\nShares sink\n", "line 3: label '' is not 0, 1 or 2"),
        (b"text,label\n ,2\n", "line 2: the text is empty"),
        (b"text,label\nShares \xff jump,1\n", "not UTF-8 text"),
    ],
)
def test_a_labelled_file_that_is_not_one_is_refused_by_name(tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}(, line \d+)?: ") as refused:
        read(path)
    assert str(refused.value).endswith(problem)


def test_check_refuses_a_bad_file_with_its_reason_and_no_traceback(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("text,score\nShares jump,0.9\n")
    run = subprocess.run(
        [sys.executable, "-m", "feeds.train_scorer", "--check", str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == f"error: {path}: no column label in its header\n"
