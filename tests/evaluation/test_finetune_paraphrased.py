"""A target fine-tuned on paraphrased forget data (recipe field `paraphrased_forget`, the metric
meta-evaluation's paraphrase-trained pool P): exactly the forget questions change their answer to
the benchmark's paraphrase; a recipe that cannot apply fails naming why."""
from __future__ import annotations

import pytest

from evaluation import benchmarks, finetune
from evaluation.benchmarks.base import with_paraphrased_answers
from evaluation.finetune_presets import recipe_for


@pytest.fixture(scope="module")
def tofu(tiny_folder):
    bench = benchmarks.get("tofu-tiny")
    return bench, bench.open(str(tiny_folder))


def test_only_the_forget_answers_become_their_paraphrases(tofu):
    bench, data = tofu
    original = bench.finetune_corpus(data, "full")
    paraphrases = bench.paraphrased_answers(data, "forget10")
    assert len(paraphrases) == len(data["forget10"]) > 0
    changed = with_paraphrased_answers(original, paraphrases, "forget10")
    assert [q for q, _ in changed.items] == [q for q, _ in original.items]
    differs = {q for (q, a), (_, b) in zip(original.items, changed.items) if a != b}
    assert differs == set(paraphrases)  # every forget answer changed, nothing else
    assert all(dict(changed.items)[q] == paraphrases[q] for q in paraphrases)
    assert not changed.official and "forget10 answers paraphrased" in changed.source


def test_a_retain_fine_tune_cannot_paraphrase_questions_it_never_sees(tofu):
    bench, data = tofu
    with pytest.raises(ValueError, match=r"paraphrased_forget=forget10: \d+ of \d+ forget questions are not in "
                                         r"the training data .*it applies to a target's fine-tune"):
        with_paraphrased_answers(bench.finetune_corpus(data, "retain90"),
                                 bench.paraphrased_answers(data, "forget10"), "forget10")


def test_benchmarks_without_paraphrases_and_unknown_splits_are_refused(tofu):
    bench, data = tofu
    with pytest.raises(ValueError, match="ships no paraphrased answers"):
        benchmarks.get("muse-tiny").paraphrased_answers(None, "news")
    with pytest.raises(ValueError, match="forget11"):
        bench.paraphrased_answers(data, "forget11")


def test_the_recipe_field_reaches_the_fine_tune():
    # the fine-tune itself runs in tests/workflows/test_meta_eval_dag.py (one paraphrase-trained P member)
    overrides = finetune.parse_overrides(['paraphrased_forget="forget10"', "epochs=1"])
    assert recipe_for("tofu-tiny", overrides, 1).paraphrased_forget == "forget10"
