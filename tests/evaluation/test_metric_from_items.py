"""A metric declared with `from_items` is computed by the evaluator through that function: on the
full item set it gives back exactly (==) what the benchmark's evaluation reported, and changing the
declared function changes the written metric. For every family, on the per-item tables of a quick
tiny evaluation written to and read back from per_item.parquet (untrained tiny Llamas; TOFU: one is
the retain model of the other; MUSE / RWKU generation budgets shortened, which changes no formula).
Also: every metric an evaluation writes is declared, and recomputable exactly when declared with
`from_items`."""
from __future__ import annotations

import contextlib
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
    out, folders = {}, {}
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
            folders[role] = (folder, reference)

    def evaluate_again():
        """The unlearned model evaluated once more (what metrics.json would hold)."""
        folder, reference = folders["unlearned"]
        with pytest.MonkeyPatch.context() as again:
            _short_variants(again)
            return _evaluate(bench, data, folder, "again", reference, root)[0]
    return bench, out, evaluate_again


def _references(out):
    return {"retain": out["retain"][1]} if "retain" in out else {}


def test_full_item_set_gives_exactly_the_reported_values(evaluated):
    """The evaluator reports a declared metric through its function: the same float, not a close one."""
    bench, out, _ = evaluated
    checked = 0
    for result, table in out.values():
        for info in bench.metrics:
            if info.from_items is None or result["metrics"].get(info.name) is None:
                continue
            got = bench.metric_from_items(info.name, table, full_set, split=SPLITS[bench.name],
                                          evaluator=result["evaluator"], references=_references(out))
            assert got.shape == (1,)
            assert float(got[0]) == result["metrics"][info.name], (bench.name, info.name)
            checked += 1
    assert checked >= 2, f"{bench.name}: no declared metric was reported"


@contextlib.contextmanager
def _shifted_functions(infos):
    """Every declared `from_items` replaced by one returning the next float above its value. A
    declaration is frozen: the test swaps the attribute in place and puts the function back."""
    originals = {info.name: info.from_items for info in infos if info.from_items is not None}

    def shifted(function):
        return lambda *args, **kwargs: np.nextafter(np.asarray(function(*args, **kwargs), dtype=np.float64), np.inf)

    try:
        for info in infos:
            if info.name in originals:
                object.__setattr__(info, "from_items", shifted(originals[info.name]))
        yield originals
    finally:
        for info in infos:
            if info.name in originals:
                object.__setattr__(info, "from_items", originals[info.name])


def test_changing_a_declared_function_changes_the_written_metric(evaluated):
    """Would fail if an evaluator computed a declared metric its own way: each written value moves
    by exactly the change made to its declared function (one float step up)."""
    bench, out, evaluate_again = evaluated
    result, _ = out["unlearned"]
    with _shifted_functions(bench.metrics) as originals:
        again = evaluate_again()
    moved = [name for name in originals if result["metrics"].get(name) is not None]
    assert moved, f"{bench.name}: no declared metric was reported"
    for name in moved:
        assert again["metrics"][name] == np.nextafter(result["metrics"][name], np.inf), (bench.name, name)
    for name, value in result["metrics"].items():
        if name not in originals:
            assert again["metrics"][name] == value, (bench.name, name)


def test_resampled_values_are_finite_and_deterministic_given_the_draws(evaluated):
    bench, out, _ = evaluated
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
    bench, out, _ = evaluated
    result, table = out["unlearned"]
    with pytest.raises(ValueError, match="no per-item recomputation of 'no_such_metric'"):
        bench.metric_from_items("no_such_metric", table, full_set, split=SPLITS[bench.name],
                                evaluator=result["evaluator"], references={})


def test_every_metric_written_is_declared_and_recomputed_exactly_where_declared(evaluated):
    """The declaration covers what the evaluator writes, and a metric is recomputable from the
    per-item table exactly when it is declared with `from_items` (`MetricInfo.resampled`)."""
    bench, out, _ = evaluated
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
                assert float(got[0]) == expected, (bench.name, role, metric)
