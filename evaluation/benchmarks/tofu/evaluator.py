"""TOFU evaluation: which pairs and prompts the metrics need, and the metrics over the cached values.

Eval sets (metrics.md §1.2): forget = forgetXX_perturbed, retain = retain_perturbed (â = paraphrase,
5 perturbations), ra / wf = real_authors / world_facts_perturbed (â = answer, 3 perturbations),
holdout = holdoutXX (MIA non-members only).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.encoding import (IGNORE_INDEX, LABEL_AFTER_QUESTION, LABEL_ANSWER, SPAN_OFFSETS, SPAN_PROMPT_LENGTH,
                                 encode_prompt_continuation)
from evaluation import decoding
from evaluation.harness import Continuation, Generation, Harness, TokenScores
from evaluation.metrics import memorization, mia
from evaluation.benchmarks import resampling
from evaluation.benchmarks.tofu import metrics as m
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
    labels: str = LABEL_ANSWER  # encoding.LABEL_SPANS: what the teacher-forced labels cover
    # ES, EM, Min-K and Min-K++ over the answer tokens with (ours) or without (OU) the EOS position
    memorization_mia_include_eos: bool = False
    # first labelled token (encoding.LABEL_SPAN_RULES): by character offsets (ours) or at index
    # len(tokenizer(prompt)) (OU, TOFU: the first answer token is not scored when it merges with
    # the prompt's trailing space, as byte-level BPE and SentencePiece do after "Answer: ")
    label_span: str = SPAN_OFFSETS
    # clean_up_tokenization_spaces of generations and ROUGE references (evaluation.decoding)
    decode_clean_up: str = decoding.AS_LOADED
    extraction_strength_ou_quirk: bool = False  # OU: ES = 1/|y| (not 0) when no suffix matches


VARIANTS = {
    # TOFU-legacy: first 300 rows per file, generation max_length 200 counting the prompt, Phi prompt
    # without "Answer: " (its quirk, reproduced for comparability with official logs); its labels
    # start after the question end tag, so Phi's "Answer: " tag is scored as part of the answer.
    # Labels start at index len(tokenizer(q_start + question + q_end)), as TOFU counts them.
    "legacy": Variant("legacy", 300, 200, None, 200, False, LABEL_AFTER_QUESTION, label_span=SPAN_PROMPT_LENGTH,
                      decode_clean_up=decoding.TOKENIZER_FLAG),
    # All rows, 200 new tokens, the prompt the model was trained with, OU's token conventions, every
    # answer token scored (labels by character offsets).
    "full": Variant("full", None, 512, 200, None, True, LABEL_ANSWER, memorization_mia_include_eos=False),
    # `full` with open-unlearning's label span (index len(tokenizer(prompt))): the rows that stand
    # beside OU's published TOFU numbers.
    "ou": Variant("ou", None, 512, 200, None, True, LABEL_ANSWER, memorization_mia_include_eos=False,
                  label_span=SPAN_PROMPT_LENGTH, decode_clean_up=decoding.ON, extraction_strength_ou_quirk=True),
}
# The evaluator fields a retain reference must share with the run that uses it.
REFERENCE_VARIANT_FIELDS = ("variant", "item_cap", "encode_max_length", "max_new_tokens", "gen_max_length",
                            "generation_prompt_has_answer_tag", "labels", "memorization_mia_include_eos",
                            "label_span", "prompt_template")
# what a reference's evaluator block written before a field existed meant by its absence
REFERENCE_FIELD_DEFAULTS = {"label_span": SPAN_OFFSETS}

SET_SPECS = {  # eval set -> (file pattern, field with â, number of perturbations)
    "forget": ("forget{p}_perturbed", "paraphrased_answer", 5),
    "retain": ("retain_perturbed", "paraphrased_answer", 5),
    "ra": ("real_authors_perturbed", "answer", 3),
    "wf": ("world_facts_perturbed", "answer", 3),
}
UTILITY_SETS = ("retain", "ra", "wf")
# TOFU-legacy budgets count the padded prompt, so its texts depend on how prompts are batched: keep
# the batch this project has always used for it (other variants size batches by memory)
LEGACY_GEN_BATCH_SIZE = 64


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
    moment_pairs: list[tuple[str, str]]  # ground-truth answers: the MIA scores read Min-K++'s μ/σ


def build_requests(rows: dict[str, list[dict]], fmt: PromptFormat, tokenizer, variant: Variant,
                   generate_sets: tuple[str, ...] | None = None) -> Requests:
    """`generate_sets`: the sets whose answers are generated (ROUGE); None: every set but holdout."""
    pairs, prompts, moment_pairs = [], [], []
    for name, items in rows.items():
        for row in items:
            prompt = fmt.prompt(row["question"], tokenizer)
            pairs.append((prompt, row["answer"]))
            moment_pairs.append((prompt, row["answer"]))
            if name == "holdout":
                continue
            _, hat_field, _ = SET_SPECS[name]
            pairs.append((prompt, row[hat_field]))
            pairs.extend((prompt, wrong) for wrong in row["perturbed_answer"])
            if generate_sets is not None and name not in generate_sets:
                continue
            prompts.append(fmt.prompt(row["question"], tokenizer,
                                      with_answer_tag=variant.generation_prompt_has_answer_tag))
    return Requests(pairs, prompts, moment_pairs)


def _mia_scores(scores: TokenScores, text: str, include_eos: bool) -> dict[str, float]:
    """LOSS and ZLib over the answer + EOS (as the probability); Min-K / Min-K++ per the variant."""
    whole, part = scores.answer_slice(include_eos=True), scores.answer_slice(include_eos)
    return {"mia_loss": mia.loss_score(scores.logprobs[whole]),
            "mia_zlib": mia.zlib_score(scores.logprobs[whole], text),
            "mia_mink": mia.mink_score(scores.logprobs[part]),
            "mia_minkpp": mia.minkpp_score(scores.logprobs[part], scores.mu[part], scores.sigma[part])}


def rouge_reference(tokenizer, variant: Variant, prompt: str, answer: str, gt: TokenScores) -> str:
    """The whole answer, decoded from its tokens, whatever the label span: OU and TOFU decode the full
    answer for ROUGE (OU's generation batch labels the whole conversation), so the prompt-length
    rule's missing first token is not missing here."""
    if variant.label_span != SPAN_OFFSETS:
        encoded = encode_prompt_continuation(tokenizer, prompt, answer, variant.encode_max_length)
        answer_ids = encoded["labels"][encoded["labels"] != IGNORE_INDEX].tolist()
        gt = TokenScores(np.asarray(answer_ids), np.zeros(len(answer_ids)), np.zeros(len(answer_ids), dtype=bool),
                         None, None, encoded["prefix_labels"], encoded["eos_kept"])
    answer_ids = gt.target_ids[gt.answer_slice(include_eos=False)]
    return decoding.decode(tokenizer, answer_ids, variant.decode_clean_up).strip()


def per_item_table(rows, fmt, tokenizer, variant, scores, generations) -> pd.DataFrame:
    """One row per item and eval set with every per-item value a metric or later run needs."""
    records = []
    for name, items in rows.items():
        for index, row in enumerate(items):
            prompt = fmt.prompt(row["question"], tokenizer)
            gt = scores[(prompt, row["answer"])]
            record = {"eval_set": name, "item_index": index, "question": row["question"],
                      "answer": row["answer"], "gt_loss_mean": gt.mean_loss, "num_tokens": gt.num_tokens,
                      "prob": float(np.exp(-gt.mean_loss)),
                      **_mia_scores(gt, row["answer"], variant.memorization_mia_include_eos)}
            if name != "holdout":
                _, hat_field, _ = SET_SPECS[name]
                hat = scores[(prompt, row[hat_field])].mean_loss
                wrong = [scores[(prompt, w)].mean_loss for w in row["perturbed_answer"]]
                gen_prompt = fmt.prompt(row["question"], tokenizer,
                                        with_answer_tag=variant.generation_prompt_has_answer_tag)
                reference = rouge_reference(tokenizer, variant, prompt, row["answer"], gt)
                hits = gt.hits[gt.answer_slice(variant.memorization_mia_include_eos)]
                generated = {}  # none for a trajectory point's forget set (no ROUGE needed)
                if gen_prompt in generations:
                    generation = generations[gen_prompt]
                    generated = {"generation": generation, **m.rouge_recall(reference, generation)}
                record.update(
                    paraphrased_loss_mean=hat, perturbed_loss_means=wrong,
                    truth_ratio=float(m.truth_ratio_items([hat], [wrong])[0]), **generated,
                    extraction_strength=memorization.extraction_strength(hits, variant.extraction_strength_ou_quirk),
                    exact_memorization=memorization.exact_memorization(hits))
                if name in ("ra", "wf"):
                    record["prob_options"] = float(m.probability_with_options_items([gt.mean_loss], [wrong])[0])
            records.append(record)
    return pd.DataFrame.from_records(records)


def _set(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table.eval_set == name].sort_values("item_index")


def aggregate(table: pd.DataFrame, retain_reference: "RetainReference | None",
              evaluator: dict | None = None, scope: str = "all", split: str = "") -> dict:
    """metrics, metric_details and flags from a per-item table (and the retain model's one). A metric
    declared with `from_items` (metrics.py) is that function on every item, the computation the
    leaderboard's bootstrap resamples (every TOFU metric is). Scope "trajectory": the table has no
    holdout rows and no forget generations, so the MIA AUCs, privleak and forget ROUGE are left out; every other metric
    is computed as in "all"."""
    metrics, details, flags = {}, {}, {}
    trajectory = scope == "trajectory"
    references = {"retain": retain_reference.table} if retain_reference is not None else {}

    def declared(name: str) -> float:
        return resampling.full_value(m.METRICS[name], table, split=split, evaluator=evaluator or {},
                                     references=references)

    for name in SET_SPECS:
        part = _set(table, name)
        metrics[f"{name}_prob"] = declared(f"{name}_prob")
        if not (trajectory and name == "forget"):
            metrics[f"{name}_rouge"] = declared(f"{name}_rouge")
            details[f"{name}_rouge1_recall"] = float(part["rouge1_recall"].mean())
        metrics[f"{name}_truth_ratio"] = declared(f"{name}_truth_ratio")
        details[f"{name}_truth_ratio_prob_mean"] = m.truth_ratio_prob_mean(
            part["paraphrased_loss_mean"].to_numpy(), np.stack(part["perturbed_loss_means"].to_numpy()))
    components = {f"{s}_{k}": metrics[f"{s}_{k}"] for s in UTILITY_SETS for k in ("prob", "rouge", "truth_ratio")}
    metrics["model_utility"] = declared("model_utility")
    details["model_utility_components"] = components
    forget = _set(table, "forget")
    metrics["extraction_strength"] = declared("extraction_strength")
    metrics["exact_memorization"] = declared("exact_memorization")
    if not trajectory:
        for attack in ("loss", "zlib", "mink", "minkpp"):
            metrics[f"mia_{attack}_auc"] = declared(f"mia_{attack}_auc")
        details["mia"] = {"members": "forget", "non_members": "holdout", "k": mia.MINK_K,
                          "labels": "forget=0, holdout=1"}

    metrics["forget_quality"] = None
    reference_auc, reference_source = mia.FALLBACK_REFERENCE_AUC, "fallback 0.5 (no retain reference)"
    if retain_reference is not None:
        if evaluator is not None:
            retain_reference.check_evaluator(evaluator)
        ref_forget = retain_reference.forget_truth_ratios(forget["question"].tolist())
        fq = m.forget_quality(forget["truth_ratio"].to_numpy(), ref_forget)  # the KS details
        metrics["forget_quality"] = declared("forget_quality")
        details["forget_quality"] = {"ks_statistic": fq["statistic"], "ks_floor": fq["floor"],
                                     "n_unlearned": len(forget), "n_retain": len(ref_forget),
                                     "retain_reference": retain_reference.source}
        flags["fq_saturated"] = fq["saturated"]
        reference_auc, reference_source = retain_reference.mink_auc(), retain_reference.source
    if not trajectory:
        flags["privleak_reference_fallback"] = retain_reference is None
        metrics["privleak"] = declared("privleak")
        details["privleak"] = {"reference_auc": reference_auc, "reference": reference_source, "attack": "mink"}
    return {"metrics": metrics, "metric_details": details, "flags": flags}


@dataclass
class RetainReference:
    """The retain model's per-item table (a previous `ubench evaluate` output folder)."""

    table: pd.DataFrame
    source: str
    evaluator: dict | None = None  # the reference's evaluator block; None: built in this run

    @classmethod
    def load(cls, folder: str | Path) -> "RetainReference":
        path, metrics = Path(folder) / "per_item.parquet", Path(folder) / "metrics.json"
        if not path.is_file() or not metrics.is_file():
            raise FileNotFoundError(f"{path if not path.is_file() else metrics} not found: --retain-reference "
                                    "must be the output folder of `ubench evaluate` run on the retain model "
                                    "(holding per_item.parquet and metrics.json)")
        evaluator = json.loads(metrics.read_text(encoding="utf-8")).get("evaluator")
        if not isinstance(evaluator, dict):
            raise ValueError(f"{metrics} has no `evaluator` block: cannot tell which evaluator variant built "
                             "this retain reference; re-run `ubench evaluate` on the retain model")
        return cls(pd.read_parquet(path), str(folder), evaluator)

    def check_evaluator(self, evaluator: dict) -> None:
        """Refuse a reference scored under another evaluator variant (its truth ratios and MIA scores
        are not comparable to this run's)."""
        if self.evaluator is None:
            return
        theirs = {**REFERENCE_FIELD_DEFAULTS, **self.evaluator}
        differ = [k for k in REFERENCE_VARIANT_FIELDS if theirs.get(k) != evaluator.get(k)]
        if differ:
            shown = "; ".join(f"{k}: reference {theirs.get(k)!r} vs this run {evaluator.get(k)!r}"
                              for k in differ)
            raise ValueError(f"the retain reference {self.source} was evaluated with another evaluator "
                             f"variant ({shown}); evaluate the retain model with the same --variant and "
                             "prompt format")

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
             progress: bool = True, is_retain_model: bool = False,
             scope: str = "all") -> tuple[dict, pd.DataFrame, Harness]:
    """Run the one scoring pass and the one generation pass, then every TOFU metric.

    The retain model is its own reference (FQ 1.0, privleak 0 by definition), so it needs no
    `retain_reference`; that keeps it on the forget-vs-utility plot without a circular dependency.
    """
    rows = eval_rows(data, split, variant)
    generate_sets = None
    if scope == "trajectory":  # forget quality, model utility and forget_prob need neither
        rows.pop("holdout")
        generate_sets = UTILITY_SETS
    tag_labelled = variant.labels == LABEL_AFTER_QUESTION and not fmt.chat_template
    harness = Harness(model, tokenizer, max_length=variant.encode_max_length, batch_size=batch_size,
                      gen_batch_size=max(batch_size, LEGACY_GEN_BATCH_SIZE) if variant.gen_max_length else None,
                      max_new_tokens=variant.max_new_tokens,
                      gen_max_length=variant.gen_max_length, progress=progress,
                      labelled_prompt_suffix=fmt.answer_tag if tag_labelled else "", label_span=variant.label_span,
                      decode_clean_up=variant.decode_clean_up)
    requests = build_requests(rows, fmt, tokenizer, variant, generate_sets)
    moment_pairs = set(requests.moment_pairs)
    scores = dict(zip(requests.pairs, harness.loglikelihood(
        [Continuation(prompt, answer, moments=(prompt, answer) in moment_pairs) for prompt, answer in requests.pairs])))
    texts = harness.generate_until([Generation(prompt, decode_stop_token=True) for prompt in requests.prompts])
    generations = {prompt: text.strip() for prompt, text in zip(requests.prompts, texts)}
    table = per_item_table(rows, fmt, tokenizer, variant, scores, generations)
    if retain_reference is None and is_retain_model:
        retain_reference = RetainReference(table, "self (this is the retain model)")
    evaluator = {
        **asdict(variant), "name": "ubench-tofu", "variant": variant.name,
        "prompt_template": fmt.as_record(), "rouge": "rouge_score rougeL recall, stemming on",
        "labelled_tokens": ("answer tag + answer + EOS (TOFU-legacy)" if tag_labelled else "answer + EOS")
        + (", by character offsets of the full text" if variant.label_span == SPAN_OFFSETS
           else ", from index len(tokenizer(prompt)) (OU / TOFU: a first answer token merged with the "
                "prompt's trailing space is not labelled)"),
        "rouge_reference": "the whole answer decoded from its tokens (every label span)",
        "decode_clean_up_rule": decoding.describe(variant.decode_clean_up),
        "memorization_mia_tokens": "answer + EOS (ours)" if variant.memorization_mia_include_eos
        else "answer without EOS (OU)",
        "generation_stop_ids": harness.stop_ids(), "generation_backend": harness.generation_backend,
        "scoring": "shared prompt prefixes (keys/values cached)" if harness.share_prefixes else "per sequence",
        "mia_k": mia.MINK_K, "batch_size": batch_size,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "retain_reference": retain_reference.source if retain_reference else None,
    }
    result = aggregate(table, retain_reference, evaluator, scope, split)
    evaluator["fq_saturated"] = result["flags"].get("fq_saturated")
    result["evaluator"] = evaluator
    return result, table, harness
