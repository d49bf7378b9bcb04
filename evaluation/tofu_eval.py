"""TOFU evaluation: which pairs and prompts the metrics need, and the metrics over the cached values.

Eval sets (metrics.md §1.2): forget = forgetXX_perturbed, retain = retain_perturbed (â = paraphrase,
5 perturbations), ra / wf = real_authors / world_facts_perturbed (â = answer, 3 perturbations),
holdout = holdoutXX (MIA non-members only).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.harness import Harness
from evaluation.metrics import memorization, mia
from evaluation.metrics import tofu as m
from evaluation.prompts import PromptFormat


@dataclass(frozen=True)
class Variant:
    """Evaluator variant: every field lands in the result's `evaluator` block (metrics.md §5)."""

    name: str
    item_cap: int | None
    encode_max_length: int
    max_new_tokens: int | None
    gen_max_length: int | None
    generation_prompt_has_answer_tag: bool


VARIANTS = {
    # TOFU-legacy: first 300 rows per file, generation max_length 200 counting the prompt, Phi prompt
    # without "Answer: " (its quirk, reproduced for comparability with official logs).
    "legacy": Variant("legacy", 300, 200, None, 200, False),
    # All rows, 200 new tokens, the prompt the model was trained with (OU-style).
    "full": Variant("full", None, 512, 200, None, True),
}

SET_SPECS = {  # eval set -> (file pattern, field with â, number of perturbations)
    "forget": ("forget{p}_perturbed", "paraphrased_answer", 5),
    "retain": ("retain_perturbed", "paraphrased_answer", 5),
    "ra": ("real_authors_perturbed", "answer", 3),
    "wf": ("world_facts_perturbed", "answer", 3),
}
UTILITY_SETS = ("retain", "ra", "wf")


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown evaluator variant {name!r}; available: {sorted(VARIANTS)}") from None


def eval_rows(data, split: str, variant: Variant) -> dict[str, list[dict]]:
    """Rows of every eval set for forget split `split` (e.g. forget10), capped per the variant."""
    if not split.startswith("forget"):
        raise ValueError(f"split must be forget01/forget05/forget10, got {split!r}")
    percent = split.removeprefix("forget")
    files = {name: pattern.format(p=percent) for name, (pattern, _, _) in SET_SPECS.items()}
    files["holdout"] = f"holdout{percent}"
    cap = variant.item_cap
    return {name: data[file][:cap] for name, file in files.items()}


@dataclass
class Requests:
    pairs: list[tuple[str, str]]
    prompts: list[str]


def build_requests(rows: dict[str, list[dict]], fmt: PromptFormat, tokenizer, variant: Variant) -> Requests:
    pairs, prompts = [], []
    for name, items in rows.items():
        for row in items:
            prompt = fmt.prompt(row["question"], tokenizer)
            pairs.append((prompt, row["answer"]))
            if name == "holdout":
                continue
            _, hat_field, _ = SET_SPECS[name]
            pairs.append((prompt, row[hat_field]))
            pairs.extend((prompt, wrong) for wrong in row["perturbed_answer"])
            prompts.append(fmt.prompt(row["question"], tokenizer,
                                      with_answer_tag=variant.generation_prompt_has_answer_tag))
    return Requests(pairs, prompts)


def _mia_scores(scores, text: str) -> dict[str, float]:
    return {"mia_loss": mia.loss_score(scores.logprobs), "mia_zlib": mia.zlib_score(scores.logprobs, text),
            "mia_mink": mia.mink_score(scores.logprobs),
            "mia_minkpp": mia.minkpp_score(scores.logprobs, scores.mu, scores.sigma)}


def per_item_table(rows, fmt, tokenizer, variant, scores, generations) -> pd.DataFrame:
    """One row per item and eval set with every per-item value a metric or later run needs."""
    records = []
    for name, items in rows.items():
        for index, row in enumerate(items):
            prompt = fmt.prompt(row["question"], tokenizer)
            gt = scores[(prompt, row["answer"])]
            record = {"eval_set": name, "item_index": index, "question": row["question"],
                      "answer": row["answer"], "gt_loss_mean": gt.mean_loss, "num_tokens": gt.num_tokens,
                      "prob": float(np.exp(-gt.mean_loss)), **_mia_scores(gt, row["answer"])}
            if name != "holdout":
                _, hat_field, _ = SET_SPECS[name]
                hat = scores[(prompt, row[hat_field])].mean_loss
                wrong = [scores[(prompt, w)].mean_loss for w in row["perturbed_answer"]]
                gen_prompt = fmt.prompt(row["question"], tokenizer,
                                        with_answer_tag=variant.generation_prompt_has_answer_tag)
                answer_ids = gt.target_ids[gt.target_ids != tokenizer.eos_token_id]
                reference = tokenizer.decode(answer_ids, skip_special_tokens=True).strip()
                generation = generations[gen_prompt]
                record.update(
                    paraphrased_loss_mean=hat, perturbed_loss_means=wrong,
                    truth_ratio=float(m.truth_ratio_items([hat], [wrong])[0]),
                    generation=generation, **m.rouge_recall(reference, generation),
                    extraction_strength=memorization.extraction_strength(gt.hits),
                    exact_memorization=memorization.exact_memorization(gt.hits))
                if name in ("ra", "wf"):
                    record["prob_options"] = float(m.probability_with_options_items([gt.mean_loss], [wrong])[0])
            records.append(record)
    return pd.DataFrame.from_records(records)


def _set(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table.eval_set == name].sort_values("item_index")


def aggregate(table: pd.DataFrame, retain_reference: "RetainReference | None") -> dict:
    """metrics, metric_details and flags from a per-item table (and the retain model's one)."""
    metrics, details, flags = {}, {}, {}
    for name in SET_SPECS:
        part = _set(table, name)
        prob_column = "prob_options" if name in ("ra", "wf") else "prob"
        metrics[f"{name}_prob"] = float(part[prob_column].mean())
        metrics[f"{name}_rouge"] = float(part["rougeL_recall"].mean())
        ratios = part["truth_ratio"].to_numpy()
        metrics[f"{name}_truth_ratio"] = (m.truth_ratio_closer_to_one(ratios) if name == "forget"
                                          else m.truth_ratio_true_better(ratios))
        details[f"{name}_truth_ratio_prob_mean"] = m.truth_ratio_prob_mean(
            part["paraphrased_loss_mean"].to_numpy(), np.stack(part["perturbed_loss_means"].to_numpy()))
        details[f"{name}_rouge1_recall"] = float(part["rouge1_recall"].mean())
    components = {f"{s}_{k}": metrics[f"{s}_{k}"] for s in UTILITY_SETS for k in ("prob", "rouge", "truth_ratio")}
    metrics["model_utility"] = m.model_utility(components)
    details["model_utility_components"] = components
    forget = _set(table, "forget")
    metrics["extraction_strength"] = float(forget["extraction_strength"].mean())
    metrics["exact_memorization"] = float(forget["exact_memorization"].mean())
    holdout = _set(table, "holdout")
    for attack in ("loss", "zlib", "mink", "minkpp"):
        metrics[f"mia_{attack}_auc"] = mia.auc(forget[f"mia_{attack}"], holdout[f"mia_{attack}"])
    details["mia"] = {"members": "forget", "non_members": "holdout", "k": mia.MINK_K,
                      "labels": "forget=0, holdout=1"}

    metrics["forget_quality"] = None
    reference_auc, reference_source = mia.FALLBACK_REFERENCE_AUC, "fallback 0.5 (no retain reference)"
    if retain_reference is not None:
        ref_forget = retain_reference.forget_truth_ratios(forget["question"].tolist())
        fq = m.forget_quality(forget["truth_ratio"].to_numpy(), ref_forget)
        metrics["forget_quality"] = fq["pvalue"]
        details["forget_quality"] = {"ks_statistic": fq["statistic"], "ks_floor": fq["floor"],
                                     "n_unlearned": len(forget), "n_retain": len(ref_forget),
                                     "retain_reference": retain_reference.source}
        flags["fq_saturated"] = fq["saturated"]
        reference_auc, reference_source = retain_reference.mink_auc(), retain_reference.source
    flags["privleak_reference_fallback"] = retain_reference is None
    metrics["privleak"] = mia.privleak(metrics["mia_mink_auc"], reference_auc)
    details["privleak"] = {"reference_auc": reference_auc, "reference": reference_source, "attack": "mink"}
    return {"metrics": metrics, "metric_details": details, "flags": flags}


@dataclass
class RetainReference:
    """The retain model's per-item table (a previous `ubench evaluate` output folder)."""

    table: pd.DataFrame
    source: str

    @classmethod
    def load(cls, folder: str | Path) -> "RetainReference":
        path = Path(folder) / "per_item.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: --retain-reference must be the output folder of "
                                    "`ubench evaluate` run on the retain model (holding per_item.parquet)")
        return cls(pd.read_parquet(path), str(folder))

    def forget_truth_ratios(self, questions: list[str]) -> np.ndarray:
        forget = _set(self.table, "forget")
        if forget["question"].tolist() != questions:
            raise ValueError(f"the retain reference {self.source} covers different forget rows "
                             f"({len(forget)} vs {len(questions)} items or another order); evaluate both "
                             "models on the same split with the same variant")
        return forget["truth_ratio"].to_numpy()

    def mink_auc(self) -> float:
        return mia.auc(_set(self.table, "forget")["mia_mink"], _set(self.table, "holdout")["mia_mink"])


def evaluate(model, tokenizer, fmt: PromptFormat, data, split: str, variant: Variant,
             retain_reference: RetainReference | None = None, *, batch_size: int = 32,
             progress: bool = True, is_retain_model: bool = False) -> tuple[dict, pd.DataFrame, Harness]:
    """Run the one scoring pass and the one generation pass, then every TOFU metric.

    The retain model is its own reference (FQ 1.0, privleak 0 by definition), so it needs no
    `retain_reference`; that keeps it on the forget-vs-utility plot without a circular dependency.
    """
    rows = eval_rows(data, split, variant)
    harness = Harness(model, tokenizer, max_length=variant.encode_max_length, batch_size=batch_size,
                      gen_batch_size=max(batch_size, 64), max_new_tokens=variant.max_new_tokens,
                      gen_max_length=variant.gen_max_length, progress=progress)
    requests = build_requests(rows, fmt, tokenizer, variant)
    scores = harness.score(requests.pairs)
    generations = harness.generate(requests.prompts)
    table = per_item_table(rows, fmt, tokenizer, variant, scores, generations)
    if retain_reference is None and is_retain_model:
        retain_reference = RetainReference(table, "self (this is the retain model)")
    result = aggregate(table, retain_reference)
    result["evaluator"] = {
        **asdict(variant), "name": "ubench-tofu", "variant": variant.name,
        "prompt_template": fmt.as_record(), "rouge": "rouge_score rougeL recall, stemming on",
        "mia_k": mia.MINK_K, "extraction_strength_ou_quirk": False, "batch_size": batch_size,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "retain_reference": retain_reference.source if retain_reference else None,
        "fq_saturated": result["flags"].get("fq_saturated"),
    }
    return result, table, harness
