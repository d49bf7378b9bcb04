"""`Benchmark.metric_from_items` on the full item set gives back exactly what the evaluator wrote to
metrics.json, for every family, on real per_item.parquet files of a quick tiny evaluation (two
untrained tiny Llamas: one is the retain / retrained reference of the other)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evaluation import benchmarks, evaluate, models

pytestmark = pytest.mark.slow
SPLITS = {"tofu-tiny": "forget01", "muse-tiny": "news", "wmdp-tiny": "bio", "rwku-tiny": "batch-1-4"}


def full_set(item_set: str, n: int) -> np.ndarray:
    return np.arange(n)[None, :]


@pytest.fixture(scope="module", params=sorted(SPLITS))
def evaluated(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(name)
    bench = benchmarks.get(name)
    data = bench.generate(root / "data")
    out = {}
    for role, seed in (("retain", 0), ("unlearned", 1)):
        folder = models.build_tiny_llama(bench.vocabulary_texts(bench.open(data)), root / f"model-{role}", seed=seed)
        tokenizer = models.load_tokenizer(str(folder))
        bench.prepare_tiny_tokenizer(tokenizer)
        tokenizer.save_pretrained(folder)
        reference = str(root / "eval-retain") if role == "unlearned" and name != "wmdp-tiny" else None
        identity = {"role": "retain", "method": "retain"} if role == "retain" else None
        evaluate.run(str(folder), name, str(data), SPLITS[name], None, root / f"eval-{role}",
                     retain_reference=reference, identity=identity, batch_size=16, progress=False)
        out[role] = root / f"eval-{role}"
    return bench, out


def test_full_item_set_gives_the_metrics_json_values(evaluated):
    bench, folders = evaluated
    references = {"retain": pd.read_parquet(folders["retain"] / "per_item.parquet")}
    checked = 0
    for folder in folders.values():
        document = json.loads((folder / "metrics.json").read_text())
        table = pd.read_parquet(folder / "per_item.parquet")
        for metric in (bench.headline.forget[0], bench.headline.utility[0]):
            expected = document["metrics"][metric]
            got = bench.metric_from_items(metric, table, full_set, split=document["identity"]["split"],
                                          evaluator=document["evaluator"], references=references)
            assert got.shape == (1,)
            assert got[0] == pytest.approx(expected, rel=1e-12, abs=1e-15), (bench.name, metric)
            checked += 1
    assert checked == 4


def test_resampled_values_move_and_stay_in_range(evaluated):
    bench, folders = evaluated
    document = json.loads((folders["unlearned"] / "metrics.json").read_text())
    table = pd.read_parquet(folders["unlearned"] / "per_item.parquet")
    references = {"retain": pd.read_parquet(folders["retain"] / "per_item.parquet")}
    rng = np.random.default_rng(0)
    draws = {}

    def draw(item_set, n):
        return draws.setdefault(item_set, rng.integers(0, n, size=(200, n)))

    for metric in (bench.headline.forget[0], bench.headline.utility[0]):
        values = bench.metric_from_items(metric, table, draw, split=document["identity"]["split"],
                                         evaluator=document["evaluator"], references=references)
        assert values.shape == (200,) and np.all(np.isfinite(values))
        assert values.min() >= 0


def test_a_metric_the_benchmark_cannot_recompute_is_a_clear_error(evaluated):
    bench, folders = evaluated
    table = pd.read_parquet(folders["unlearned"] / "per_item.parquet")
    with pytest.raises(ValueError, match="no per-item recomputation of 'no_such_metric'"):
        bench.metric_from_items("no_such_metric", table, full_set, split=SPLITS[bench.name],
                                evaluator={"scale": 1.0}, references={})
