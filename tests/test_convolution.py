"""The headline scorer's convolutional network: its gradient, its batching, and what word
vectors buy it (feeds/convolution.py, feeds/train_convolution.py)."""

from __future__ import annotations

import numpy as np
import pytest

from feeds.convolution import FILTERS, WIDTHS, Convolution, Stream
from feeds.train_convolution import _initial, fit, gradients, word_vectors

WORDS = {w: i + 1 for i, w in enumerate("abcdef")}


def _headlines() -> list[list[str]]:
    # repeated words (tied maxima), an empty headline, one shorter than every width but one,
    # and a word outside the vocabulary
    return [["a", "b", "c", "a"], [], ["d"], ["e", "f"], ["b", "zz", "c"], ["a", "a", "a"]]


def test_the_gradient_is_the_loss_s_slope_in_every_parameter():
    rng = np.random.default_rng(3)
    table = np.vstack([np.zeros((1, 8)), rng.normal(size=(len(WORDS), 8))])
    params = {k: v.astype(np.float64) for k, v in _initial(rng, 8).items()}
    params["bias"] = rng.normal(size=params["bias"].shape) * 0.1  # some filters at 0, some not
    stream = Stream.of(_headlines(), WORDS)
    labels = np.array([0, 1, 2, 1, 0, 2])
    class_weights = np.array([1.0, 2.0, 0.5])
    keep = (rng.random((6, len(WIDTHS) * FILTERS)) > 0.5) * 2.0  # dropout, as in training
    _, grads = gradients(params, table, stream, labels, class_weights, keep)
    for name, value in params.items():
        flat, slope = value.reshape(-1), grads[name].reshape(-1)
        for i in rng.choice(flat.size, min(flat.size, 25), replace=False):
            before = flat[i]
            flat[i] = before + 1e-6
            up, _ = gradients(params, table, stream, labels, class_weights, keep)
            flat[i] = before - 1e-6
            down, _ = gradients(params, table, stream, labels, class_weights, keep)
            flat[i] = before
            numeric = (up - down) / 2e-6
            assert abs(numeric - slope[i]) <= 1e-5 * max(1.0, abs(numeric)), (name, i)


def _random_network(rng: np.random.Generator) -> Convolution:
    params = _initial(rng, 8)
    vectors = rng.normal(size=(len(WORDS), 8)).astype(np.float32) @ params["projection"]
    return Convolution.from_arrays(
        {
            "vocabulary": np.array("\n".join(WORDS)),
            "vectors": vectors,
            "kernels": params["kernels"],
            "kernel_bias": rng.normal(size=params["bias"].shape),
            "readout": params["readout"],
            "readout_bias": params["readout_bias"],
        }
    )


def test_a_headline_reads_the_same_alone_as_among_others():
    network = _random_network(np.random.default_rng(5))
    headlines = _headlines()
    together = network.logits(headlines)
    for i, headline in enumerate(headlines):
        assert np.allclose(together[i], network.logits([headline])[0], atol=1e-5), headline
    assert network.logits([]).shape == (0, 3)
    assert np.allclose(network.logits([["b", "zz"]]), network.logits([["b", "unheard"]]))
    assert not np.allclose(network.logits([["b", "zz"]]), network.logits([["b", "c"]]))


def test_windows_start_only_where_they_fit_in_their_headline():
    stream = Stream.of([["a", "b", "c"], ["d"], []], WORDS)
    assert stream.rows.tolist() == [1, 2, 3, 0, 0, 4, 0, 0, 0, 0, 0]
    assert stream.window_starts(1).nonzero()[0].tolist() == [0, 1, 2, 5, 8]
    assert stream.window_starts(3).nonzero()[0].tolist() == [0, 5, 8]


@pytest.fixture(scope="module")
def moves() -> Convolution:
    """A network trained on a few market-move headlines: each direction has three verbs."""
    words, labels = [], []
    for label, verbs in enumerate((_DOWN, _UP, ["opens", "holds", "reports"])):
        for verb in verbs:
            for subject in ["stock", "index", "bank", "oil", "shares", "bitcoin", "market"]:
                words.append([subject, verb])
                labels.append(label)
    return Convolution.from_arrays(fit(words, np.array(labels)))


_UP, _DOWN = ["rose", "gained", "grew"], ["fell", "dropped", "lost"]


def test_a_word_training_never_saw_reads_like_the_words_it_resembles(moves):
    """The point of word vectors: words no training headline used, in the vocabulary as
    wordllama's whole-word tokens, read the way the training verbs they resemble do."""
    up, down = ["rising", "jump", "increase", "higher"], ["falling", "collapse", "loss", "lower"]
    assert set(up + down) <= word_vectors().whole_words()
    read = moves.logits([["stock", word] for word in up + down]).argmax(axis=1)
    assert read.tolist() == [1] * len(up) + [0] * len(down)
    assert moves.logits([["stock", "zzyzx"]]).argmax() == moves.logits([["stock"]]).argmax()
