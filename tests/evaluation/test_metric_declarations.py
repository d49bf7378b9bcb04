"""Every benchmark's metrics are declared once (`MetricInfo`): one direction vocabulary, one
declaration per name, a function over the per-item table (`from_items`) or the place it is computed
(`computed_by`), and `metric_from_items` recomputing exactly the metrics with a function. The slow
check against real evaluations (the evaluator reports through the function) is in
test_metric_from_items.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation import benchmarks
from evaluation.metrics.declaration import DIRECTIONS, HIGHER, UNIT, MetricInfo

NOT_RECOMPUTED = "no per-item recomputation"  # resampling.unknown_metric's words


def _every_draw(item_set: str, n: int) -> np.ndarray:
    return np.arange(n)[None, :]


def claims(bench, metric: str) -> bool:
    """Whether `metric_from_items` takes `metric` on: on a table without item values it must then
    fail for a missing item set or column, not refuse the metric. Every declared name is an item set
    (and a family, WMDP's pools) of the table, so a benchmark that recomputes a metric only when
    its set is there (WMDP's `wmdp_<subset>`) is asked as if it were."""
    names = [info.name for info in bench.metrics]
    table = pd.DataFrame({"eval_set": names, "family": names, "item_index": range(len(names))})
    try:
        bench.metric_from_items(metric, table, _every_draw, split=bench.splits[0], evaluator={}, references={})
    except NotImplementedError:
        return False
    except ValueError as error:
        return NOT_RECOMPUTED not in str(error)
    except KeyError:  # a per-item column the stub table lacks: the metric was taken on
        return True
    return True


@pytest.mark.parametrize("name", benchmarks.names())
def test_declarations_use_the_one_vocabulary_and_name_each_metric_once(name):
    infos = benchmarks.get(name).metrics
    assert infos, f"{name} declares no metrics"
    assert all(info.better in DIRECTIONS for info in infos)
    names = [info.name for info in infos]
    assert len(names) == len(set(names)), f"{name}: a metric is declared twice"


def test_a_metric_name_means_one_direction_across_benchmarks_and_on_the_board():
    from leaderboard import headline

    seen: dict[str, str] = {}
    for bench in benchmarks.BENCHMARKS.values():
        for info in bench.metrics:
            assert seen.setdefault(info.name, info.better) == info.better, (bench.name, info.name)
            assert headline.metric_direction(info.name) == info.better, (bench.name, info.name)


def test_the_board_writes_the_historical_direction_words():
    assert DIRECTIONS == ("higher", "lower", "zero", "half")  # app.js and published pages read these


def test_a_declaration_refuses_an_unknown_direction_or_an_empty_range():
    assert MetricInfo("x", HIGHER, "x", UNIT, computed_by="elsewhere").resampled is False
    with pytest.raises(ValueError, match="direction 'closer_to_zero' is not one of"):
        MetricInfo("x", "closer_to_zero", "x")
    with pytest.raises(ValueError, match="lo > hi"):
        MetricInfo("x", HIGHER, "x", (1.0, 0.0))


def _mean_of_x(table, draw, **context):
    return np.asarray([1.0])


def test_resampled_follows_from_the_declared_function():
    assert MetricInfo("x", HIGHER, "x", UNIT, from_items=_mean_of_x).resampled is True
    assert MetricInfo("x", HIGHER, "x", UNIT, computed_by="lm-eval").resampled is False
    with pytest.raises(ValueError, match="not both"):
        MetricInfo("x", HIGHER, "x", UNIT, from_items=_mean_of_x, computed_by="lm-eval")


@pytest.mark.parametrize("name", benchmarks.names())
def test_every_metric_says_how_it_is_computed(name):
    """A function over the per-item table, or in words where the number comes from instead."""
    for info in benchmarks.get(name).metrics:
        assert (info.from_items is not None) != bool(info.computed_by), (name, info.name)


def test_declarations_import_without_numpy_or_torch():
    """The leaderboard and the grid planner read the declaration module: it must stay cheap."""
    import subprocess
    import sys

    code = ("import sys, evaluation.metrics.declaration; "
            "print(sorted(m for m in ('numpy', 'torch', 'pandas') if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"


@pytest.mark.parametrize("name", benchmarks.names())
def test_resampled_is_declared_exactly_where_metric_from_items_recomputes(name):
    bench = benchmarks.get(name)
    for info in bench.metrics:
        assert claims(bench, info.name) == info.resampled, \
            f"{name}: {info.name} declared resampled={info.resampled}, metric_from_items disagrees"
    assert not claims(bench, "no_such_metric")


@pytest.mark.parametrize("name", benchmarks.names())
def test_headline_metrics_are_resampled(name):
    """The significance groups are drawn for the headline axes: each first candidate must be."""
    bench = benchmarks.get(name)
    for axis in (bench.headline.forget, bench.headline.utility):
        assert axis[0] in bench.resampled_metrics(), (name, axis[0])


def test_real_wmdp_declares_every_metric_its_scoring_reports():
    """The real release's subsets, categories and RMU side subjects (the tiny twin has no side
    subjects: the slow check in test_metric_from_items.py covers it)."""
    from types import SimpleNamespace

    from evaluation.benchmarks.wmdp import scoring, tasks

    release = SimpleNamespace(subsets=("bio", "chem", "cyber"), categories=dict(tasks.MMLU_CATEGORIES),
                              mmlu=dict.fromkeys(scoring.SIDE_SUBJECTS))
    written = {"forget_acc", *scoring.metric_names(release)}
    assert written == {info.name for info in benchmarks.get("wmdp").metrics}
