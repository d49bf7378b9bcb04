"""`Benchmark.metric_from_items` on the full item set gives back exactly what the benchmark's
evaluation reported, for every family, on the per-item tables of a quick tiny evaluation written
to and read back from per_item.parquet (untrained tiny Llamas; TOFU: one is the retain model of
the other; MUSE / RWKU generation budgets shortened, which changes no formula). Also: every metric
an evaluation writes is declared, and declared `resampled` exactly when it is recomputed."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from evaluation import benchmarks, models
from evaluation.benchmarks.base import EvalContext

pytestmark = pytest.mark.slow  # four tiny evaluations, ~40 s on 2 cores
SPLITS = {"tofu-tiny": "forget01", "muse-tiny": "news", "wmdp-tiny": "bio", "rwku-tiny": "batch-1-4"}


def full_set(item_set: str, n: int) -> np.ndarray:
    return np.arange(n)[None, :]


def _short_variants(monkeypatch):
    from evaluation.benchmarks.muse import evaluator as muse
    from evaluation.benchmarks.rwku import evaluator as rwku

    muse_get, rwku_get = muse.get_variant, rwku.get_variant
    monkeypatch.setattr(muse, "get_variant", lambda name: dataclasses.replace(
        muse_get(name), verbmem_max_new_tokens=6, knowmem_max_new_tokens=6))
    monkeypatch.setattr(rwku, "get_variant", lambda name: dataclasses.replace(
        rwku_get(name), max_new_tokens=6, utility_max_new_tokens=6))


def _evaluate(bench, data, folder, role, reference, tmp):
    model, tokenizer, fmt = models.load_model(str(folder))
    context = EvalContext(model, tokenizer, fmt, data, SPLITS[bench.name], bench.default_variant,
                          reference=reference, batch_size=16, progress=False, role=role)
    output = bench.evaluate(context)
    output.table.to_parquet(tmp / f"{role}.parquet")
    result = json.loads(json.dumps(output.result))  # what metrics.json holds
    return result, pd.read_parquet(tmp / f"{role}.parquet")


@pytest.fixture(scope="module", params=sorted(SPLITS))
def evaluated(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(name)
    bench = benchmarks.get(name)
    data = bench.open(bench.generate(root / "data"))
    roles = ("retain", "unlearned") if name == "tofu-tiny" else ("unlearned",)
    out = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        _short_variants(monkeypatch)
        for seed, role in enumerate(roles):
            folder = models.build_tiny_llama(bench.vocabulary_texts(data), root / f"model-{role}", seed=seed)
            tokenizer = models.load_tokenizer(str(folder))
            bench.prepare_tiny_tokenizer(tokenizer)
            tokenizer.save_pretrained(folder)
            reference = None
            if role == "unlearned" and "retain" in out:
                from evaluation.benchmarks.tofu import evaluator as tofu_eval

                reference = tofu_eval.RetainReference(out["retain"][1], "retain model of this test")
            out[role] = _evaluate(bench, data, folder, role, reference, root)
    return bench, out


def _references(out):
    return {"retain": out["retain"][1]} if "retain" in out else {}


def test_full_item_set_gives_the_reported_values(evaluated):
    bench, out = evaluated
    for result, table in out.values():
        for metric in (bench.headline.forget[0], bench.headline.utility[0]):
            expected = result["metrics"][metric]
            got = bench.metric_from_items(metric, table, full_set, split=SPLITS[bench.name],
                                          evaluator=result["evaluator"], references=_references(out))
            assert got.shape == (1,)
            assert got[0] == pytest.approx(expected, rel=1e-12, abs=1e-15), (bench.name, metric)


def test_resampled_values_are_finite_and_deterministic_given_the_draws(evaluated):
    bench, out = evaluated
    result, table = out["unlearned"]
    drawn = {}

    def draw(item_set, n):
        return drawn.setdefault(item_set, np.random.default_rng(len(drawn)).integers(0, n, size=(200, n)))

    for metric in (bench.headline.forget[0], bench.headline.utility[0]):
        kwargs = dict(split=SPLITS[bench.name], evaluator=result["evaluator"], references=_references(out))
        values = bench.metric_from_items(metric, table, draw, **kwargs)
        assert values.shape == (200,) and np.all(np.isfinite(values)) and values.min() >= 0
        assert np.array_equal(values, bench.metric_from_items(metric, table, draw, **kwargs))


def test_a_metric_the_benchmark_cannot_recompute_is_a_clear_error(evaluated):
    bench, out = evaluated
    result, table = out["unlearned"]
    with pytest.raises(ValueError, match="no per-item recomputation of 'no_such_metric'"):
        bench.metric_from_items("no_such_metric", table, full_set, split=SPLITS[bench.name],
                                evaluator=result["evaluator"], references={})


def test_every_metric_written_is_declared_and_recomputed_exactly_where_declared(evaluated):
    """The declaration covers what the evaluator writes, and `MetricInfo.resampled` is true of a
    metric exactly when the per-item table gives back its reported value."""
    bench, out = evaluated
    declared = {info.name: info for info in bench.metrics}
    for role, (result, table) in out.items():
        assert set(result["metrics"]) <= set(declared), (bench.name, set(result["metrics"]) - set(declared))
        for metric, expected in result["metrics"].items():
            kwargs = dict(split=SPLITS[bench.name], evaluator=result["evaluator"], references=_references(out))
            if not declared[metric].resampled:
                with pytest.raises(ValueError, match="no per-item recomputation"):
                    bench.metric_from_items(metric, table, full_set, **kwargs)
            elif expected is not None:
                got = bench.metric_from_items(metric, table, full_set, **kwargs)
                assert got[0] == pytest.approx(expected, rel=1e-12, abs=1e-15), (bench.name, role, metric)
