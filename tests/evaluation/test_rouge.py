"""The memoised-stemmer scorers give rouge_score's own scores."""
from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer

from evaluation.metrics import rouge

WORDS = ("running runs ran runner author authors authored novels novel writing writes wrote born city "
         "cities generously generous generation the of a an and Basil Mahfouz Al-Kuwaiti 1956 prize-winning "
         "didn't it's connection connected connecting happily happiness").split()


@pytest.mark.parametrize("use_stemmer", [True, False])
def test_scores_equal_rouge_score(use_stemmer):
    rng = random.Random(0)
    reference = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=use_stemmer)
    ours = rouge.scorer(("rouge1", "rougeL"), use_stemmer)
    for _ in range(200):
        a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))
        b = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 60)))
        assert ours.score(a, b) == reference.score(a, b), (a, b)


def test_stemming_is_on_only_when_asked():
    stemmed, plain = rouge.scorer(("rougeL",), True), rouge.scorer(("rougeL",), False)
    assert stemmed.score("running novels", "runs novel")["rougeL"].recall == 1.0
    assert plain.score("running novels", "runs novel")["rougeL"].recall == 0.0
