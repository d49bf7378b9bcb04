"""MUSE evaluation (metrics.md §2): VerbMem, KnowMem forget / retain, PrivLeak (+ OU's extraction
strength), from one scoring pass and one generation pass of `evaluation.harness.Harness`.

Named variants, every field of which lands in the result's `evaluator` block (metrics.md §5):
`official` reproduces MUSE's own code, `ou` open-unlearning's configs/eval/muse_metrics (d3d7cf9) token
for token, `ou_all_tokens` OU's protocol with this project's token conventions. They differ in which
tokens are scored: OU's `tokenwise_logprobs` / `tokenwise_vocab_logprobs` drop the last labelled
token of every scored text, meant as its EOS, but OU's CompletionDataset appends no EOS, so OU never
scores the last real token of a PrivLeak text or of a verbmem gt (`scores_last_token`); OU's
extraction-strength loop returns 1/|y| when no suffix matches (`extraction_strength_ou_quirk`); and
OU's `max_length` caps the text after BOS (`mia_cap_after_bos`: BOS + 2048 tokens).

Texts longer than the model's context are truncated by a recorded rule, never silently:
- generation prompts (VerbMem prefix, KnowMem 10-shot prompt) keep BOS and their last tokens, so
  prompt + budget fits the context (left truncation; counts in metric_details.truncation);
- PrivLeak texts keep their first tokens (OU's 2048-token cap, or the context when smaller);
- the extraction-strength sequence (prompt + " " + gt) drops prompt tokens after BOS first.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import decoding
from evaluation.benchmarks import resampling
from evaluation.benchmarks.muse import MUSE_METRICS
from evaluation.harness import Continuation, Generation, Harness, Rolling
from evaluation.metrics import memorization, mia
from evaluation.benchmarks.muse import metrics as m


@dataclass(frozen=True)
class Variant:
    name: str
    rouge_stemming: bool
    scale: float                      # 100 (MUSE reports ×100) or 1 (OU fractions); PrivLeak is % in both
    verbmem_max_new_tokens: int
    verbmem_reference_tokens: int | None  # first N tokens of tokenizer(gt) incl. BOS; None = full gt (OU)
    knowmem_max_new_tokens: int
    stop_strings: tuple[str, ...]
    mia_max_tokens: int | None        # cap on PrivLeak texts before the model's context (None: no cap)
    mink_k: float
    mink_at_least_one: bool           # OU: max(1, ⌊kT⌋); MUSE: ⌊kT⌋
    privleak_convention: str          # "muse": (AUC − AUC_r)/AUC_r; "ou": OU's 1 − AUC form (same value)
    privleak_reference: str           # "published_constant" | "retrain_model"
    extraction_strength: bool
    gt_insert_space: bool             # OU CompletionDataset joins prompt + " " + gt
    # False (OU): the last token of every scored text (PrivLeak text, prompt + gt) is not scored:
    # OU drops the last labelled position as EOS, and its MUSE texts carry no EOS
    scores_last_token: bool = True
    extraction_strength_ou_quirk: bool = False  # OU: ES = 1/|y| (not 0) when no suffix matches
    mia_cap_after_bos: bool = False   # True (OU): mia_max_tokens counts the tokens after BOS
    decode_clean_up: str = decoding.AS_LOADED  # clean_up_tokenization_spaces of generations and references


VARIANTS = {
    "official": Variant("official", rouge_stemming=False, scale=100.0, verbmem_max_new_tokens=128,
                        verbmem_reference_tokens=128, knowmem_max_new_tokens=32, stop_strings=m.KNOWMEM_STOP_STRINGS,
                        mia_max_tokens=None, mink_k=m.MINK_K, mink_at_least_one=False, privleak_convention="muse",
                        privleak_reference="published_constant", extraction_strength=False, gt_insert_space=False),
    # open-unlearning's evaluator as it runs: the numbers that stand beside OU's published rows
    "ou": Variant("ou", rouge_stemming=True, scale=1.0, verbmem_max_new_tokens=128, verbmem_reference_tokens=None,
                  knowmem_max_new_tokens=32, stop_strings=m.KNOWMEM_STOP_STRINGS, mia_max_tokens=2048,
                  mink_k=mia.MINK_K, mink_at_least_one=True, privleak_convention="ou",
                  privleak_reference="retrain_model", extraction_strength=True, gt_insert_space=True,
                  scores_last_token=False, extraction_strength_ou_quirk=True, mia_cap_after_bos=True,
                  decode_clean_up=decoding.ON),
    # OU's protocol, every text token scored (ES without the 1/|y| quirk; at most 2048 tokens in all;
    # decoding as loaded): what `ou` computed before it followed OU's token and decoding conventions
    "ou_all_tokens": Variant("ou_all_tokens", rouge_stemming=True, scale=1.0, verbmem_max_new_tokens=128,
                             verbmem_reference_tokens=None, knowmem_max_new_tokens=32,
                             stop_strings=m.KNOWMEM_STOP_STRINGS, mia_max_tokens=2048, mink_k=mia.MINK_K,
                             mink_at_least_one=True, privleak_convention="ou", privleak_reference="retrain_model",
                             extraction_strength=True, gt_insert_space=True),
}
PRIVLEAK_SETS = ("privleak_forget", "privleak_retain", "privleak_holdout")


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown MUSE evaluator variant {name!r}; available: {sorted(VARIANTS)}") from None


def model_context(model) -> int | None:
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


# ---- encoding with the recorded truncation rules -----------------------------------------------

def fit_prompt(ids: list[int], budget: int, context: int | None, bos: int | None) -> list[int]:
    """Left-truncate a generation prompt so prompt + budget <= context, keeping a leading BOS."""
    if context is None or len(ids) + budget <= context:
        return ids
    room = context - budget
    if room < 2:
        raise ValueError(f"a {budget}-token generation budget leaves no room for a prompt in a {context}-token context")
    head = [ids[0]] if bos is not None and ids and ids[0] == bos else []
    return head + ids[len(ids) - (room - len(head)):]


def fit_text(ids: list[int], cap: int | None) -> list[int]:
    """Keep the first `cap` tokens of a scored text (OU's max_length truncation)."""
    return ids if cap is None else ids[:cap]


def scored_span(ids: list[int], start: int, scores_last_token: bool) -> tuple[tuple[int, ...], int]:
    """The score request (ids, start) of `ids[start:]`. Without the last token (OU) the request simply
    ends one token earlier: a causal model's log-probs of the tokens before it are unchanged."""
    if not scores_last_token and len(ids) > start:
        ids = ids[:-1]
    return tuple(ids), start


def score_request(ids: tuple[int, ...], start: int) -> Continuation | Rolling:
    """The harness request scoring `ids[start:]`: a whole text after BOS (PrivLeak) is rolling."""
    return Rolling(ids) if start == 1 else Continuation(ids[:start], ids[start:])


def fit_completion(ids: list[int], start: int, context: int | None) -> tuple[list[int], int]:
    """Fit prompt + gt into the context by dropping prompt tokens after BOS, then gt's tail."""
    if context is None or len(ids) <= context:
        return ids, start
    drop = min(len(ids) - context, start - 1)
    ids, start = ids[:1] + ids[1 + drop:], start - drop
    return ids[:context], start


@dataclass
class Requests:
    """The variant's encoded requests: generation (ids, budget), scoring (ids, start), and per item
    the keys back into them plus what was truncated."""

    items: list[dict]
    generations: list[tuple[tuple[int, ...], int]]
    scores: list[tuple[tuple[int, ...], int]]


def build_requests(data, tokenizer, variant: Variant, context: int | None) -> Requests:
    bos = tokenizer.bos_token_id
    # OU truncates to len(tokenizer("")) + max_length: its cap counts the tokens after BOS
    text_cap = variant.mia_max_tokens
    if text_cap is not None and variant.mia_cap_after_bos:
        text_cap += len(tokenizer("")["input_ids"])
    mia_cap = min(c for c in (text_cap, context) if c is not None) if (text_cap or context) else None
    items, generations, scores = [], [], []

    def prompt_request(text: str, budget: int) -> tuple[tuple[int, ...], int, int, bool]:
        ids = tokenizer(text)["input_ids"]
        fitted = fit_prompt(ids, budget, context, bos)
        return tuple(fitted), budget, len(ids), len(fitted) < len(ids)

    for index, row in enumerate(data["verbmem/forget"]):
        ids, budget, full_len, truncated = prompt_request(row["prompt"], variant.verbmem_max_new_tokens)
        item = {"eval_set": "verbmem_forget", "item_index": index, "prompt": row["prompt"], "gt": row["gt"],
                "prompt_tokens": full_len, "prompt_truncated": truncated, "gen_key": (ids, budget)}
        if variant.verbmem_reference_tokens is not None:
            ref_ids = tokenizer(row["gt"])["input_ids"][:variant.verbmem_reference_tokens]
            item["reference"] = decoding.decode(tokenizer, ref_ids, variant.decode_clean_up)
        joined = row["prompt"] + (" " if variant.gt_insert_space else "") + row["gt"]
        full = tokenizer(joined)["input_ids"]
        start = len(tokenizer(row["prompt"])["input_ids"])
        fitted, fitted_start = fit_completion(full, start, context)
        if variant.verbmem_reference_tokens is None:  # OU: the reference is the decoded gt labels
            item["reference"] = decoding.decode(tokenizer, full[start:], variant.decode_clean_up)
        if variant.extraction_strength:
            item["score_key"] = scored_span(fitted, fitted_start, variant.scores_last_token)
            item["completion_truncated"] = len(fitted) < len(full)
            scores.append(item["score_key"])
        generations.append(item["gen_key"])
        items.append(item)
    for which in ("forget", "retain"):
        icl = data[f"knowmem/{which}_qa_icl"]
        for index, row in enumerate(data[f"knowmem/{which}_qa"]):
            prompt = m.knowmem_prompt(icl, row["question"])
            ids, budget, full_len, truncated = prompt_request(prompt, variant.knowmem_max_new_tokens)
            items.append({"eval_set": f"knowmem_{which}", "item_index": index, "prompt": row["question"],
                          "reference": row["answer"], "prompt_tokens": full_len, "prompt_truncated": truncated,
                          "gen_key": (ids, budget)})
            generations.append((ids, budget))
    for name in PRIVLEAK_SETS:
        for index, text in enumerate(data[name.replace("_", "/", 1)]):
            ids = tokenizer(text)["input_ids"]
            fitted = fit_text(ids, mia_cap)
            key = scored_span(fitted, 1, variant.scores_last_token)  # tokens 2..T (everything after BOS), OU: 2..T-1
            items.append({"eval_set": name, "item_index": index, "prompt": text, "text_tokens": len(ids),
                          "text_truncated": len(fitted) < len(ids), "score_key": key})
            scores.append(key)
    return Requests(items, generations, scores)


# ---- per-item table and aggregates ---------------------------------------------------------------

def per_item_table(requests: Requests, variant: Variant, generations: dict, scores: dict) -> pd.DataFrame:
    records = []
    for item in requests.items:
        record = {k: v for k, v in item.items() if not k.endswith("_key")}
        if "gen_key" in item:
            raw = generations[item["gen_key"]]
            output = m.cut_at_stop_strings(raw, variant.stop_strings) if item["eval_set"].startswith("knowmem") else raw
            record["generation"] = output
            record["rougeL_f1"] = m.rouge_l_f1(item["reference"], output, use_stemmer=variant.rouge_stemming)
        if item["eval_set"] == "verbmem_forget" and "score_key" in item:
            record["extraction_strength"] = memorization.extraction_strength(
                scores[item["score_key"]].hits, ou_quirk=variant.extraction_strength_ou_quirk)
        if item["eval_set"].startswith("privleak"):
            token_scores = scores[item["score_key"]]
            record["scored_tokens"] = token_scores.num_tokens
            record["loss"] = token_scores.mean_loss
            record["mink"] = m.min_k_score(token_scores.logprobs, variant.mink_k,
                                           at_least_one=variant.mink_at_least_one)
        records.append(record)
    return pd.DataFrame.from_records(records)


def _set(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table.eval_set == name].sort_values("item_index")


def forget_holdout_auc(table: pd.DataFrame, variant: Variant) -> float:
    """The variant's AUC of Min-k% scores, forget vs holdout (MUSE: memorised → 0; OU: → 1)."""
    forget, holdout = _set(table, "privleak_forget")["mink"], _set(table, "privleak_holdout")["mink"]
    return m.muse_auc(forget, holdout) if variant.privleak_convention == "muse" else mia.auc(forget, holdout)


def privleak_value(auc_value: float, auc_reference: float, variant: Variant) -> float:
    if variant.privleak_convention == "muse":
        return m.muse_privleak(auc_value, auc_reference)
    return mia.privleak(auc_value, auc_reference)


@dataclass
class RetrainReference:
    """The retrained model's evaluation (`ubench evaluate` output folder), read once and reused."""

    table: pd.DataFrame
    variant: str
    source: str

    @classmethod
    def load(cls, folder: str | Path) -> "RetrainReference":
        folder = Path(folder)
        for name in ("per_item.parquet", "metrics.json"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder / name} not found: --retain-reference must be the output folder "
                                        "of `ubench evaluate` run on the retrained model")
        variant = json.loads((folder / "metrics.json").read_text())["evaluator"]["variant"]
        return cls(pd.read_parquet(folder / "per_item.parquet"), variant, str(folder))

    def auc(self, variant: Variant, texts: dict[str, list[str]]) -> float:
        if self.variant != variant.name:
            raise ValueError(f"the retrain reference {self.source} was evaluated with variant {self.variant!r}, "
                             f"this evaluation uses {variant.name!r}: evaluate both with the same variant")
        for name, wanted in texts.items():
            if _set(self.table, name)["prompt"].tolist() != wanted:
                raise ValueError(f"the retrain reference {self.source} scored other {name} texts: evaluate both "
                                 "models on the same data")
        return forget_holdout_auc(self.table, variant)


def privleak_reference(variant: Variant, corpus: str, table: pd.DataFrame, reference: RetrainReference | None,
                       is_retain_model: bool) -> tuple[float | None, str, bool]:
    """(AUC_ref in the variant's convention, where it came from, fell back to the published constant)."""
    published = m.AUC_RETRAIN.get(corpus)
    as_variant = (lambda a: a) if variant.privleak_convention == "muse" else (lambda a: 1 - a)
    texts = {name: _set(table, name)["prompt"].tolist() for name in ("privleak_forget", "privleak_holdout")}
    if variant.privleak_reference == "published_constant" and published is not None:
        return published, f"published AUC_RETRAIN[{corpus!r}] = {published!r} (MUSE constants.py)", False
    if is_retain_model:
        return forget_holdout_auc(table, variant), "self (this is the retrained model)", False
    if reference is not None:
        return reference.auc(variant, texts), f"retrain model evaluation {reference.source}", False
    if published is not None:
        return (as_variant(published), f"published AUC_RETRAIN[{corpus!r}] = {published!r} (no retrain model "
                "evaluation given)", True)
    return None, f"none: {corpus} has no published retrain AUC and no retrain model evaluation was given", True


TRAJECTORY_SETS = ("knowmem_forget", "knowmem_retain")  # the headline forget / utility and matched metric


def trajectory_requests(requests: Requests) -> Requests:
    """Scope "trajectory": only the knowmem QA generations (no verbmem continuations, no privleak scoring)."""
    items = [item for item in requests.items if item["eval_set"] in TRAJECTORY_SETS]
    return Requests(items, [item["gen_key"] for item in items], [])


def declared(name: str, table: pd.DataFrame, variant: Variant, corpus: str) -> float:
    """Metric `name` on every item through its declared `from_items` (the bootstrap's computation);
    the variant's fields are what those functions read from the evaluator block, the corpus is the split."""
    info = next(info for info in MUSE_METRICS if info.name == name)
    return resampling.full_value(info, table, split=corpus, evaluator=asdict(variant), references={})


def trajectory_aggregate(table: pd.DataFrame, variant: Variant, corpus: str) -> dict:
    metrics = {name: declared(name, table, variant, corpus) for name in TRAJECTORY_SETS}
    return {"metrics": metrics, "metric_details": {f"{n}_items": len(_set(table, n)) for n in TRAJECTORY_SETS},
            "flags": {}}


def aggregate(table: pd.DataFrame, variant: Variant, corpus: str, reference: RetrainReference | None,
              is_retain_model: bool) -> dict:
    metrics, details, flags = {}, {}, {}
    for name in ("verbmem_forget", "knowmem_forget", "knowmem_retain"):
        metrics[name] = declared(name, table, variant, corpus)
        details[f"{name}_items"] = len(_set(table, name))
    auc_value = forget_holdout_auc(table, variant)
    auc_ref, source, fallback = privleak_reference(variant, corpus, table, reference, is_retain_model)
    metrics["privleak"] = None if auc_ref is None else privleak_value(auc_value, auc_ref, variant)
    flags["privleak_reference_fallback"] = fallback
    flags["privleak_reference_missing"] = auc_ref is None
    details["privleak"] = {"auc_forget_holdout": auc_value, "auc_convention": variant.privleak_convention,
                           "reference_auc": auc_ref, "reference": source,
                           "attack": f"Min-{variant.mink_k:.0%}", "items": {n: len(_set(table, n)) for n in PRIVLEAK_SETS}}
    if variant.extraction_strength:
        metrics["extraction_strength"] = declared("extraction_strength", table, variant, corpus)
    truncation = {"prompts_left_truncated": {n: int(_set(table, n)["prompt_truncated"].sum())
                                             for n in ("verbmem_forget", "knowmem_forget", "knowmem_retain")},
                  "privleak_texts_truncated": {n: int(_set(table, n)["text_truncated"].sum()) for n in PRIVLEAK_SETS}}
    if variant.extraction_strength:
        truncation["completions_truncated"] = int(_set(table, "verbmem_forget")["completion_truncated"].sum())
    details["truncation"] = truncation
    flags["inputs_truncated"] = any(v for group in truncation.values()
                                    for v in (group.values() if isinstance(group, dict) else [group]))
    return {"metrics": metrics, "metric_details": details, "flags": flags}


def evaluate(model, tokenizer, data, variant: Variant, reference: RetrainReference | None = None, *,
             retain_corpus: str, batch_size: int = 32, progress: bool = True,
             is_retain_model: bool = False, scope: str = "all") -> tuple[dict, pd.DataFrame, Harness]:
    """Scope "trajectory" (an intermediate point of evaluate_every): knowmem forget/retain only."""
    context = model_context(model)
    # per-sequence scoring: verbmem prompts are distinct passages (sharing would save nothing), and a
    # repeated one keeps the exact values MUSE's recorded results were computed with
    harness = Harness(model, tokenizer, batch_size=batch_size, max_new_tokens=None, progress=progress,
                      decode_clean_up=variant.decode_clean_up, share_prefixes=False)
    requests = build_requests(data, tokenizer, variant, context)
    if scope == "trajectory":
        requests = trajectory_requests(requests)
    scores = dict(zip(requests.scores, harness.loglikelihood([score_request(*key) for key in requests.scores])))
    texts = harness.generate_until([Generation(ids, budget, decode_stop_token=True)
                                    for ids, budget in requests.generations])
    generations = dict(zip(requests.generations, texts))
    table = per_item_table(requests, variant, generations, scores)
    if scope == "trajectory":
        return {**trajectory_aggregate(table, variant, data.corpus), "evaluator": {"name": "ubench-muse", "variant": variant.name,
                                                                      "scope": scope}}, table, harness
    result = aggregate(table, variant, data.corpus, reference, is_retain_model)
    result["evaluator"] = {
        **asdict(variant), "name": "ubench-muse", "variant": variant.name, "item_cap": None,
        "corpus": data.corpus, "data": data.location,
        "rouge": f"rouge_score rougeL F1, stemming {'on' if variant.rouge_stemming else 'off'}, (reference, output)",
        "scale_label": "x100" if variant.scale == 100 else "fraction",
        "verbmem_reference": ("full gt (decoded labels of prompt + ' ' + gt)" if variant.verbmem_reference_tokens is None
                              else f"first {variant.verbmem_reference_tokens} tokens of tokenizer(gt) incl. BOS"),
        "mia_text_truncation": (f"first {variant.mia_max_tokens} tokens" + (" after BOS" if variant.mia_cap_after_bos
                                                                            else " incl. BOS")
                                if variant.mia_max_tokens else "none")
                               + (f", and at most the model context ({context} tokens)" if context else ""),
        "privleak_reference_used": result["metric_details"]["privleak"]["reference"],
        "prompt_truncation": (f"left: BOS + last (context - budget - 1) tokens when prompt + budget > context "
                              f"({context} tokens)" if context else "none"),
        "model_context": context, "retain_corpus": retain_corpus,
        "decode_clean_up_rule": decoding.describe(variant.decode_clean_up),
        "scored_tokens": ("every token after BOS (PrivLeak) / every gt token (ES)" if variant.scores_last_token
                          else "the last token of every scored text left out (OU: dropped as if it were EOS)"),
        "knowmem_prompt": "10-shot 'Question: q\\nAnswer: a\\n\\n' + question",
        "batch_size": batch_size, "generation": "greedy, stops at EOS, one pass (grouped by budget)",
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
    }
    return result, table, harness
