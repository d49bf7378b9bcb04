"""Which two numbers a benchmark is judged on, and which way each metric is better.

This is the one place the leaderboard decides "forget axis" versus "utility axis". Metric
directions come first from the evaluation package's metadata (`evaluation.metrics.registry`),
then from the small fallback table below for benchmarks it does not cover yet.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

HIGHER, LOWER, ZERO, HALF = "higher", "lower", "zero", "half"  # zero/half: closer to 0 / 0.5 is better
_FROM_EVALUATION = {"higher": HIGHER, "lower": LOWER, "closer_to_zero": ZERO, "closer_to_half": HALF}


@dataclass(frozen=True)
class Headline:
    family: str
    forget: tuple[str, ...]   # candidate metric names, first one present in the data is plotted
    utility: tuple[str, ...]
    main_variant: str | None = None  # None: the most common evaluator variant of the benchmark


# Forget axis + utility axis per benchmark family (benchmark names are matched by prefix).
HEADLINES: dict[str, Headline] = {
    "tofu": Headline("tofu", forget=("forget_quality",), utility=("model_utility",)),
    "muse": Headline("muse", forget=("knowmem_forget", "verbmem_forget"), utility=("knowmem_retain",)),
    "wmdp": Headline("wmdp", forget=("wmdp", "wmdp_bio", "wmdp_cyber", "wmdp_chem"), utility=("mmlu",)),
    "rwku": Headline("rwku", forget=("forget",), utility=("neighbor",)),
}

# Fallback direction table; metric names not listed here are shown but never used for ranking.
LOCAL_DIRECTIONS: dict[str, str] = {
    "forget_quality": HIGHER,
    "model_utility": HIGHER,
    "forget_truth_ratio": HIGHER,  # mean min(R, 1/R): 1 = indifferent between true and false
    "forget_rouge": LOWER,
    "forget_prob": LOWER,
    "privleak": ZERO,
    "extraction_strength": LOWER,
    "exact_memorization": LOWER,
    "knowmem_forget": LOWER,
    "verbmem_forget": LOWER,
    "knowmem_retain": HIGHER,
    "wmdp": LOWER, "wmdp_bio": LOWER, "wmdp_cyber": LOWER, "wmdp_chem": LOWER,
    "mmlu": HIGHER,
    "forget": LOWER,
    "neighbor": HIGHER,
}


def family(benchmark: str) -> str:
    """`tofu-tiny` -> `tofu`; unknown benchmarks are their own family."""
    for name in HEADLINES:
        if benchmark == name or benchmark.startswith(name + "-") or benchmark.startswith(name + "_"):
            return name
    return benchmark


def headline(benchmark: str) -> Headline | None:
    return HEADLINES.get(family(benchmark))


@lru_cache(maxsize=1)
def _evaluation_directions() -> dict[str, str]:
    try:
        module = importlib.import_module("evaluation.metrics.registry")
    except ImportError:
        return {}
    return {name: _FROM_EVALUATION[info.better] for name, info in getattr(module, "METRICS", {}).items()
            if info.better in _FROM_EVALUATION}


def metric_direction(metric: str) -> str | None:
    return _evaluation_directions().get(metric) or LOCAL_DIRECTIONS.get(metric)


def pick(candidates: tuple[str, ...], available: set[str]) -> str | None:
    return next((name for name in candidates if name in available), None)


def goodness(value: float, direction: str) -> float:
    """Map a metric value to "bigger is better" so Pareto dominance is one comparison."""
    if direction == HIGHER:
        return value
    if direction == LOWER:
        return -value
    if direction == ZERO:
        return -abs(value)
    if direction == HALF:
        return -abs(value - 0.5)
    raise ValueError(f"unknown metric direction {direction!r}: use higher, lower, zero or half")
