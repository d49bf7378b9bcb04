"""Paired per-item bootstrap and significance letters (compact letter display)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leaderboard import aggregate, letters, significance
from tests.leaderboard import lb_synthetic as syn

N_WMDP, N_MMLU = 60, 40


def test_letters_for_a_chain_of_not_different_pairs():
    # a~b, b~c, a differs from c
    assert letters.compact_letters(["a", "b", "c"], [("a", "c")]) == {"a": "a", "b": "ab", "c": "b"}


def test_letters_without_differences_and_with_all_differences():
    assert letters.compact_letters(["x", "y", "z"], []) == {"x": "a", "y": "a", "z": "a"}
    assert letters.compact_letters(["x", "y", "z"], [("x", "y"), ("x", "z"), ("y", "z")]) == \
        {"x": "a", "y": "b", "z": "c"}


def test_letters_share_a_letter_exactly_when_not_different():
    rng = np.random.default_rng(3)
    items = list(range(9))
    for _ in range(30):
        different = {(i, j) for i in items for j in items if i < j and rng.random() < 0.4}
        shown = letters.compact_letters(items, different)
        for i in items:
            for j in items:
                if i < j:
                    share = bool(set(shown[i]) & set(shown[j]))
                    assert share == ((i, j) not in different), (i, j, shown)


def test_paired_draws_are_deterministic_per_set_and_refuse_other_sizes():
    first, second = significance.PairedDraws(), significance.PairedDraws()
    second("other", 5)  # call order does not matter
    assert np.array_equal(first("wmdp_bio", 10), second("wmdp_bio", 10))
    assert first("wmdp_bio", 10).shape == (significance.SAMPLES, 10)
    assert not np.array_equal(first("mmlu", 10), first("wmdp_bio", 10))
    with pytest.raises(significance.ItemSetMismatch, match="has 11 items here but 10"):
        first("wmdp_bio", 11)


def test_identical_values_never_differ_and_separated_values_do():
    rng = np.random.default_rng(0)
    base = rng.normal(size=significance.SAMPLES)
    same = significance.significantly_different(np.stack([base, base.copy()]))
    assert not same.any()
    apart = significance.significantly_different(np.stack([base, base + 5.0]))
    assert apart[0, 1] and apart[1, 0] and not apart[0, 0]


def per_item(correct_wmdp, correct_mmlu) -> pd.DataFrame:
    rows = [{"eval_set": "wmdp_bio", "family": "wmdp", "item_index": i, "correct": float(c)}
            for i, c in enumerate(correct_wmdp)]
    rows += [{"eval_set": f"mmlu_s{i % 2}", "family": "mmlu", "item_index": i // 2, "correct": float(c)}
             for i, c in enumerate(correct_mmlu)]
    return pd.DataFrame(rows)


def write_run(root, method, seed, correct_wmdp, correct_mmlu, documents, per_item_file=True):
    document = syn.document(benchmark="wmdp-tiny", split="bio", method=method, seed=seed, variant="rmu-official",
                            metrics={"forget_acc": float(np.mean(correct_wmdp)), "mmlu": float(np.mean(correct_mmlu))})
    path = syn.write(root, document)
    if per_item_file:
        per_item(correct_wmdp, correct_mmlu).to_parquet(path.parent / "per_item.parquet")
    documents.append((path, document))


def pattern(n, ones):
    """n items of which `ones` correct, spread over the items."""
    return (np.arange(n) * ones % n < ones).astype(float) if ones else np.zeros(n)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("significance")
    documents = []
    wmdp_low, mmlu_good = pattern(N_WMDP, 15), pattern(N_MMLU, 30)
    write_run(root, "npo", 0, wmdp_low, mmlu_good, documents)
    write_run(root, "npo", 1, wmdp_low, mmlu_good, documents)
    write_run(root, "ga", 0, wmdp_low, mmlu_good, documents)           # same items as npo: never different
    write_run(root, "rmu", 0, np.ones(N_WMDP), np.zeros(N_MMLU), documents)  # far from both
    write_run(root, "simnpo", 0, wmdp_low, mmlu_good, documents, per_item_file=False)
    rows = aggregate.aggregate(documents)
    return {row["method"]: row for row in rows}, documents


def test_rows_with_the_same_items_share_a_group_and_a_separated_row_does_not(table):
    rows, _ = table
    assert rows["npo"]["forget_group"] == rows["ga"]["forget_group"] == "a"  # lower forget_acc is better
    assert rows["rmu"]["forget_group"] == "b"
    assert rows["npo"]["utility_group"] == rows["ga"]["utility_group"] == "a"
    assert rows["rmu"]["utility_group"] == "b"


def test_a_row_without_per_item_data_has_no_group(table):
    rows, _ = table
    assert rows["simnpo"]["forget_group"] is None and rows["simnpo"]["utility_group"] is None


def test_the_bootstrap_is_deterministic(table):
    rows, documents = table
    again = {row["method"]: row for row in aggregate.aggregate(documents)}
    assert {m: (r["forget_group"], r["utility_group"]) for m, r in again.items()} == \
        {m: (r["forget_group"], r["utility_group"]) for m, r in rows.items()}
    from evaluation.benchmarks import BENCHMARKS

    seeds = [item for item in documents if item[1]["identity"]["method"] == "npo"]
    values = [significance.seed_mean_samples(BENCHMARKS["wmdp-tiny"], "forget_acc", seeds, {},
                                             significance.PairedDraws(), significance.TableCache())
              for _ in range(2)]
    assert np.array_equal(values[0], values[1]) and values[0].std() > 0


def test_close_rows_overlap_and_the_seed_mean_is_bootstrapped(tmp_path):
    documents = []
    # three rows 4 correct answers apart on 60 items: neighbours overlap, the ends may not
    for method, ones in (("a1", 10), ("a2", 14), ("a3", 18), ("far", 50)):
        write_run(tmp_path, method, 0, pattern(N_WMDP, ones), pattern(N_MMLU, 20), documents)
    rows = {row["method"]: row for row in aggregate.aggregate(documents)}
    assert rows["a1"]["forget_group"].startswith("a")
    assert set(rows["a1"]["forget_group"]) & set(rows["a2"]["forget_group"])
    assert not set(rows["far"]["forget_group"]) & set(rows["a1"]["forget_group"] + rows["a3"]["forget_group"])
    assert len({rows[m]["utility_group"] for m in rows}) == 1  # identical utility items everywhere
