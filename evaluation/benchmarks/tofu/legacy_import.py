"""Import an evaluation log of the original TOFU repository (`eval_log_aggregated.json`).

Recomputes the aggregates with the same metric functions as our harness, from the per-item losses
the legacy evaluator logged (formulas: shared data README "Expected aggregates").
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evaluation.benchmarks.tofu import metrics as m

SECTIONS = {  # our eval-set name -> legacy log section
    "retain": "eval_log.json",
    "forget": "eval_log_forget.json",
    "ra": "eval_real_author_wo_options.json",
    "wf": "eval_real_world_wo_options.json",
}
NEEDED_FIELDS = ("avg_gt_loss", "rougeL_recall", "avg_paraphrased_loss", "average_perturb_loss")


def read_log(path: str | Path) -> dict[str, dict[str, list]]:
    """{eval set: {field: per-item values in item order}}; raises naming what is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected a TOFU-legacy eval_log_aggregated.json "
                                "(locuslab/tofu data/ft_*/eval_results/ds_size300/)")
    document = json.loads(path.read_text())
    sets = {}
    for name, section in SECTIONS.items():
        if section not in document:
            raise ValueError(f"{path} lacks section {section!r}; an eval_log_aggregated.json has "
                             f"{list(SECTIONS.values())}")
        fields = {}
        for field in NEEDED_FIELDS:
            if field not in document[section]:
                raise ValueError(f"{path} section {section!r} lacks field {field!r}")
            per_item = document[section][field]
            fields[field] = [per_item[key] for key in sorted(per_item, key=int)]
        sets[name] = fields
    return sets


def truth_ratios(fields: dict[str, list]) -> np.ndarray:
    return m.truth_ratio_items(fields["avg_paraphrased_loss"], fields["average_perturb_loss"])


def aggregates(sets: dict[str, dict[str, list]]) -> dict[str, float]:
    """The 9 utility components, model utility and the forget-set values of one log."""
    values: dict[str, float] = {}
    for name in ("retain", "forget"):
        values[f"{name}_prob"] = m.probability(sets[name]["avg_gt_loss"])
    for name in ("ra", "wf"):
        values[f"{name}_prob"] = float(np.mean(m.probability_with_options_items(
            sets[name]["avg_gt_loss"], sets[name]["average_perturb_loss"])))
    for name in SECTIONS:
        values[f"{name}_rouge"] = float(np.mean(sets[name]["rougeL_recall"]))
        ratios = truth_ratios(sets[name])
        values[f"{name}_truth_ratio"] = (m.truth_ratio_closer_to_one(ratios) if name == "forget"
                                         else m.truth_ratio_true_better(ratios))
    values["model_utility"] = m.model_utility(utility_components(values))
    return values


def utility_components(values: dict[str, float]) -> dict[str, float]:
    return {f"{s}_{k}": values[f"{s}_{k}"] for s in ("retain", "ra", "wf") for k in ("prob", "rouge", "truth_ratio")}


def import_log(path: str | Path, retain_path: str | Path | None = None) -> dict:
    """JSON-ready summary: model_utility, forget_quality (needs `retain_path`) and components."""
    sets = read_log(path)
    values = aggregates(sets)
    result = {"source": str(path), "model_utility": values["model_utility"],
              "utility_components": utility_components(values),
              "forget": {k: values[f"forget_{k}"] for k in ("prob", "rouge", "truth_ratio")},
              "forget_quality": None}
    if retain_path is not None:
        retain = read_log(retain_path)["forget"]
        if len(retain["avg_paraphrased_loss"]) != len(sets["forget"]["avg_paraphrased_loss"]):
            raise ValueError("the two logs cover different numbers of forget items; FQ needs the same rows")
        fq = m.forget_quality(truth_ratios(sets["forget"]), truth_ratios(retain))
        result.update(forget_quality=fq["pvalue"], ks_statistic=fq["statistic"],
                      fq_saturated=fq["saturated"], retain_source=str(retain_path))
    return result


def _import_log_command(args) -> int:
    print(json.dumps(import_log(args.log, args.retain), indent=2))
    return 0


def add_commands(subparsers, formatter_class) -> None:
    """`ubench tofu import-log`."""
    tofu = subparsers.add_parser("tofu", help="TOFU utilities (import-log)")
    tofu_sub = tofu.add_subparsers(dest="tofu_command", metavar="<tofu command>", required=True)
    imp = tofu_sub.add_parser("import-log", formatter_class=formatter_class,
                              help="aggregate an eval_log_aggregated.json of the original TOFU repository")
    imp.add_argument("log", help="eval_log_aggregated.json of the model")
    imp.add_argument("--retain", default=None, help="the retain model's eval_log_aggregated.json (for FQ)")
    imp.set_defaults(func=_import_log_command)
