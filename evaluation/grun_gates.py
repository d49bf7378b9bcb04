"""How well a trained GRUN run's gates tell forget prompts from retain prompts.

GRUN trains its gate σ(s(h)) by BCE to open (→ 1) on forget prompts and close (→ 0) on retain
prompts, so the edit fires only where it should. This measures it after training: every
forget and retain example of the run's unlearning corpora is forwarded once with the edits' gate
logits recorded at the position training edits (the last prompt token, from the labels), and the
per-example score is the mean gate value over the edited blocks. `auc` is the ROC AUC of that score
with forget = positive (1.0: every forget prompt opens the gate more than every retain prompt).

These are the training prompts: on TOFU-like benchmarks the forget set that is evaluated is the
forget set that was trained on, so this is where the gate has to work. `ubench evaluate-run`
stores the result as `metric_details.grun_gates` of a GRUN run's metrics.json.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from evaluation.encoding import encode_corpus, pad_batch
from methods.parametrizations.grun import prompt_end_from_labels

MAX_EXAMPLES = 400  # per side: enough for a stable AUC, bounded cost on the full benchmarks
BATCH = 32
DETAILS_KEY = "grun_gates"


def auc(positive: list[float], negative: list[float]) -> float | None:
    """P(score of a positive > score of a negative), ties counted half (the Mann-Whitney AUC)."""
    if not positive or not negative:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([1] * len(positive) + [0] * len(negative), positive + negative))


def separation(forget: list[float], retain: list[float]) -> dict[str, Any]:
    """Summary of per-example gate values (in [0, 1]) on forget and retain prompts."""
    def mean(values):
        return math.fsum(values) / len(values) if values else None

    return {"forget_mean": mean(forget), "retain_mean": mean(retain), "auc": auc(forget, retain),
            "n_forget": len(forget), "n_retain": len(retain)}


@torch.no_grad()
def gate_values(model, examples: list[dict[str, torch.Tensor]], pad_token_id: int) -> list[float]:
    """Mean σ(gate logit) over the edited blocks, one value per example."""
    edits = model.grun
    device = next(model.parameters()).device
    values: list[float] = []
    for start in range(0, len(examples), BATCH):
        batch = {k: v.to(device) for k, v in pad_batch(examples[start:start + BATCH], pad_token_id).items()}
        ids = batch["input_ids"]
        ends = prompt_end_from_labels(batch["labels"], batch["attention_mask"])
        with edits.at_positions(ids, ends), edits.recording() as records:
            model(input_ids=ids, attention_mask=batch["attention_mask"])
        logits = torch.stack(records[id(ids)][:len(edits.layers)])  # [layers, batch]
        values += torch.sigmoid(logits.float()).mean(dim=0).tolist()
    return values


def measure(model, tokenizer, prompt_format, corpora: dict, max_length: int,
            answer_labels: str = "answer") -> dict[str, Any]:
    """`separation` of the gates on the run's forget and retain corpora (retain may be absent)."""
    if getattr(model, "grun", None) is None:
        raise ValueError("grun gate measurement needs a model with GRUN edits (load_grun_model)")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sides = {}
    for name in ("forget", "retain"):
        corpus = corpora.get(name)
        examples = encode_corpus(tokenizer, prompt_format, corpus, max_length,
                                 labels_from=answer_labels)[:MAX_EXAMPLES] if corpus else []
        sides[name] = gate_values(model, examples, pad) if examples else []
    return {**separation(sides["forget"], sides["retain"]), "layers": list(model.grun.layers),
            "position": "last prompt token", "max_examples": MAX_EXAMPLES}


def measure_run(spec: dict[str, Any], model, tokenizer, prompt_format, data) -> dict[str, Any]:
    """`measure` on the run's unlearning corpora, built as `ubench unlearn` built them."""
    from evaluation import benchmarks

    bench = benchmarks.get(spec["benchmark"])
    hyper = spec.get("hyperparameters", {})
    corpora = bench.corpora_for_run(data, spec["split"], hyper.get("corpus"))
    max_length = int(hyper.get("max_length", bench.default_max_length))
    return measure(model, tokenizer, prompt_format, corpora, max_length, hyper.get("answer_labels", "answer"))
