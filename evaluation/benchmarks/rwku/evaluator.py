"""RWKU evaluation: the requests of every probe and utility set, one scoring pass and one generation
pass per budget (evaluation.harness.Harness), the per-item table and the aggregate metrics.

Variants (metrics.md §4): `official` (jinzhuoran/RWKU eval_*.py, one BOS per prompt),
`official_as_published` (the same code token for token: its `generate_completions`,
`get_next_word_predictions` and `score_completions` tokenise chat-rendered prompts, which already
hold BOS, with add_special_tokens=True, so every probe, MMLU, BBH, TriviaQA, fluency and TruthfulQA
input starts with two BOS; TruthfulQA scores `tokenized_example[len(tokenized_prompt):]`, the
prompt-length label span; RWKU's published rows were made this way) and `sago` (SAGO's OU-style
re-implementation: forget / neighbour ROUGE only, one BOS from `apply_chat_template(tokenize=True)`).
Scores are fractions (the paper prints x100).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from evaluation.benchmarks import resampling
from evaluation.benchmarks.rwku import prompts as P
from evaluation.benchmarks.rwku.data import MIA_FILES, UTILITY_FILES
from evaluation.encoding import SPAN_OFFSETS, SPAN_PROMPT_LENGTH
from evaluation import decoding
from evaluation.harness import Continuation, Generation, Harness, NextToken, Rolling
from evaluation.benchmarks.rwku import metrics as m

FORGET_LEVELS = {"forget_level1": "fb", "forget_level2": "qa", "forget_level3": "aa"}
NEIGHBOR_LEVELS = {"neighbor_level1": "fb", "neighbor_level2": "qa"}
OFFICIAL_STOP_TOKENS = ("<|eot_id|>", " \n", "\n")  # looked up with convert_tokens_to_ids


@dataclass(frozen=True)
class Variant:
    """Every field lands in the result's `evaluator` block (metrics.md §5)."""

    name: str
    evaluator: str              # official evaluator vs re-implementation
    answer_tag: str             # where "Answer:" goes
    max_new_tokens: int
    stop_strings: tuple[str, ...]
    rouge: str
    noanswer: bool              # empty output scored as "NOANSWER"
    utility: bool               # MIA + MMLU/BBH/TruthfulQA/TriviaQA/fluency
    utility_max_new_tokens: int = 256   # BBH and fluency
    triviaqa_max_new_tokens: int = 30
    mia: str = "set means of LOSS, Zlib, Min-K%++ (k=0.2) on forget_mia / retain_mia; not AUCs"
    double_bos: bool = False    # the official generate_completions re-adds BOS to templated prompts
    # first scored token of a TruthfulQA choice (encoding.LABEL_SPAN_RULES): offsets, or the
    # official score_completions' index len(tokenizer(prompt)) (skips a first token merged with "A: ")
    truthfulqa_label_span: str = SPAN_OFFSETS
    decode_clean_up: str = decoding.AS_LOADED  # clean_up_tokenization_spaces of generations and references


VARIANTS = {
    "official": Variant("official", "official RWKU evaluator (jinzhuoran/RWKU eval_*.py)",
                        "after the chat template's generation prompt", 30, (),
                        "rouge (pltrdy) 1.0.1 rouge-l recall, no stemming", True, True),
    "sago": Variant("sago", "SAGO re-implementation (OU RWKUQADataset, configs/eval/rwku_metrics)",
                    "inside the user turn", 32, ("\n\n", "\nQuestion", "Question:"),
                    "rouge_score rougeL recall, stemming on", False, False, decode_clean_up=decoding.ON),
}
VARIANTS["official_as_published"] = replace(VARIANTS["official"], name="official_as_published",
                                            evaluator="official RWKU evaluator as published (two BOS)",
                                            double_bos=True, truthfulqa_label_span=SPAN_PROMPT_LENGTH,
                                            decode_clean_up=decoding.TOKENIZER_FLAG)
OFFICIAL_VARIANTS = ("official", "official_as_published")  # the official prompts and stops


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown RWKU evaluator variant {name!r}; available: {sorted(VARIANTS)}") from None


def official_stop_ids(tokenizer) -> dict[str, int | None]:
    """What the official code's `convert_tokens_to_ids` returns for its stop strings. In byte-level
    BPE vocabularies (Llama-3) " \\n" and "\\n" are not vocabulary entries (newline is "Ċ") and
    resolve to the unk id, which is None there: only EOS and <|eot_id|> stop. In a word-level
    vocabulary with an unk token they resolve to <unk>, so generating <unk> stops."""
    return {token: tokenizer.convert_tokens_to_ids(token) for token in OFFICIAL_STOP_TOKENS}


@dataclass
class Scope:
    """Which targets are evaluated: probes of `probe_targets`, MIA/utility of `utility_targets`."""

    probe_targets: list[int]
    utility_targets: list[int]


def utility_targets(data, targets: list[int], strict: bool) -> list[int]:
    """Targets whose MIA and utility files exist. `strict` (single target): a missing file is an error
    naming it; batch settings use the targets of the range that have them (recorded)."""
    names = (*MIA_FILES, *UTILITY_FILES)
    if strict:
        for target in targets:
            for name in names:
                data.rows(target, name)  # raises, naming the missing file
        return list(targets)
    return [t for t in targets if all(data.has(t, name) for name in names)]


def _probe_prompt(variant: Variant, tokenizer, level: int, row: dict) -> str:
    build = P.official_probe_prompt if variant.name in OFFICIAL_VARIANTS else P.sago_probe_prompt
    return build(tokenizer, level, row["type"], row["query"])


def evaluate(model, tokenizer, data, scope: Scope, variant: Variant, *, batch_size: int = 32,
             progress: bool = True) -> tuple[dict, pd.DataFrame, Harness]:
    harness = Harness(model, tokenizer, max_length=2048, batch_size=batch_size, progress=progress,
                      double_bos=variant.double_bos, label_span=variant.truthfulqa_label_span,
                      decode_clean_up=variant.decode_clean_up)
    if variant.name in OFFICIAL_VARIANTS:
        resolved = official_stop_ids(tokenizer)
        stop_ids = tuple(i for i in resolved.values() if i is not None)
        stop_strings: tuple[str, ...] = ()
    else:
        resolved, stop_ids, stop_strings = {}, (), variant.stop_strings
    records = []

    # ---- probes: one generation pass over every level and neighbour set ----------------------
    probe_sets = {**FORGET_LEVELS, **NEIGHBOR_LEVELS}
    probe_rows = {name: [(t, row) for t in scope.probe_targets for row in data.rows(t, name)] for name in probe_sets}
    prompt_of = {name: [_probe_prompt(variant, tokenizer, int(name[-1]), row) for _, row in rows]
                 for name, rows in probe_rows.items()}
    outputs = _generate(harness, [p for ps in prompt_of.values() for p in ps], variant.max_new_tokens, stop_ids,
                        stop_strings)
    for name, rows in probe_rows.items():
        for index, ((target, row), prompt) in enumerate(zip(rows, prompt_of[name])):
            raw = outputs[prompt]
            if variant.noanswer:
                prediction = m.official_prediction(raw)
                score = m.rouge_l_recall_official(prediction, row["answer"])
            else:
                prediction = raw.strip()
                score = m.rouge_l_recall_stemmed(prediction, _roundtrip(tokenizer, row["answer"], variant.decode_clean_up))
            records.append({"eval_set": name, "target_id": target, "item_index": index, "probe_type": row["type"],
                            "query": row["query"], "answer": row["answer"], "generation": raw,
                            "prediction": prediction, "rougeL_recall": score})

    metrics: dict = {}
    table = pd.DataFrame.from_records(records)
    for group, levels in (("forget", FORGET_LEVELS), ("neighbor", NEIGHBOR_LEVELS)):
        for name in (*(f"{group}_{column}" for column in levels.values()), f"{group}_all"):
            metrics[name] = _declared(name, table)
    details: dict = {"items": {name: len(rows) for name, rows in probe_rows.items()},
                     "all_columns": "mean of the level columns"}
    add_probe_type_metrics(table, metrics, details)

    fluency_tokenizer = None
    if variant.utility and scope.utility_targets:
        utility_records, utility_names, bbh_quirk, fluency_tokenizer = _utility(harness, tokenizer, data, scope,
                                                                                variant, stop_ids)
        records.extend(utility_records)
        details["bbh_em_official_char_quirk"] = bbh_quirk
        table = pd.DataFrame.from_records(records)
        metrics.update({name: _declared(name, table) for name in utility_names})
    # flags mark results that are not comparable; evaluating MIA/utility on the targets of a batch
    # that have those files does not touch the headline probes, so it is recorded, not flagged
    flags: dict = {}
    details["utility_evaluated"] = bool(variant.utility and scope.utility_targets)
    details["utility_subset"] = bool(variant.utility and scope.utility_targets != scope.probe_targets)
    evaluator = {
        **asdict(variant), "variant": variant.name, "rouge_package": variant.rouge,
        "generation_budget": {"probes_max_new_tokens": variant.max_new_tokens,
                              "bbh_fluency_max_new_tokens": variant.utility_max_new_tokens,
                              "triviaqa_max_new_tokens": variant.triviaqa_max_new_tokens},
        # the looked-up strings written escaped ("\\n"): result files never carry raw control characters
        "stop_ids_resolved": {text.encode("unicode_escape").decode("ascii"): i for text, i in resolved.items()},
        "stop_ids_used": list(stop_ids),
        "targets_evaluated": _span(scope.probe_targets), "utility_targets": _span(scope.utility_targets),
        "mia_as_set_means": True, "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "fluency_tokenizer": fluency_tokenizer,
        "bbh_em_references": "the answer as a one-element list (official passes the string: see metric_details)",
        "minkpp_variance_floor": "1e-6 (official: none)",
        "decode_clean_up_rule": decoding.describe(variant.decode_clean_up),
        "batch_size": batch_size, "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
    }
    return {"metrics": metrics, "metric_details": details, "flags": flags, "evaluator": evaluator}, table, harness


def _declared(name: str, table: pd.DataFrame) -> float:
    """A metric on every item through its declared `from_items` (the bootstrap's computation)."""
    from evaluation.benchmarks.rwku import METRICS

    info = next(info for info in METRICS if info.name == name)
    return resampling.full_value(info, table, split="", evaluator={}, references={})


def add_probe_type_metrics(table: pd.DataFrame, metrics: dict, details: dict) -> None:
    """forget_aa per level-3 probe type (probe_types.py), the items behind each in metric_details."""
    from evaluation.benchmarks.rwku import probe_types

    by_type, counts = probe_types.per_type(table)
    metrics.update(by_type)
    if counts:
        details["forget_aa_probe_types"] = counts


def _roundtrip(tokenizer, text: str, clean_up: str = decoding.AS_LOADED) -> str:
    """OU compares against the answer decoded from its label tokens."""
    return decoding.decode(tokenizer, tokenizer(text, add_special_tokens=False)["input_ids"], clean_up).strip()


def _span(targets: list[int]) -> str:
    if not targets:
        return "none"
    if targets == list(range(targets[0], targets[-1] + 1)):
        return f"{targets[0]}-{targets[-1]}" if len(targets) > 1 else str(targets[0])
    return ",".join(map(str, targets))


def _utility(harness: Harness, tokenizer, data, scope: Scope, variant: Variant, probe_stop_ids):
    """MIA, MMLU, BBH, TruthfulQA, TriviaQA and fluency of the official evaluator: their per-item
    records and the names of the metrics (declared in rwku/__init__.py) those records give."""
    targets = scope.utility_targets
    records, names = [], []  # the per-item records and the metrics they give (in the order written)
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    chat_stops = tuple(i for i in (eot,) if i is not None)

    # MIA: set means on forget_mia (FM) and retain_mia (RM)
    for name, key in (("forget_mia", "fm"), ("retain_mia", "rm")):
        rows = data.rows_for(targets, name)
        texts = [row["text"] for row in rows]
        scores = dict(zip(texts, harness.loglikelihood([Rolling(text) for text in texts])))
        for index, (row, text) in enumerate(zip(rows, texts)):
            s = scores[text]
            item = {"loss": m.mia_loss(s.logprobs), "zlib": m.mia_zlib(s.logprobs, text),
                    "mink20": m.mia_minkpp(s.logprobs, s.mu, s.sigma)}
            records.append({"eval_set": name, "item_index": index, "query": text[:200],
                            **{f"mia_{k}": v for k, v in item.items()}})
        names += [f"mia_{key}_{k}" for k in ("loss", "zlib", "mink20")]

    # MMLU: next-token argmax over " A".." D"
    rows = data.rows_for(targets, "retain_mmlu")
    candidates = [tokenizer.encode(" " + letter, add_special_tokens=False)[-1] for letter in P.MMLU_LETTERS]
    mmlu_prompts = [P.mmlu_prompt(tokenizer, row) for row in rows]
    logps = {prompt: s.logprobs for prompt, s in
             zip(mmlu_prompts, harness.loglikelihood([NextToken(prompt, candidates) for prompt in mmlu_prompts]))}
    correct = []
    for index, (row, prompt) in enumerate(zip(rows, mmlu_prompts)):
        choice = int(np.argmax(logps[prompt][:len(row["choices"])]))
        correct.append(float(choice == int(row["answer"])))
        records.append({"eval_set": "mmlu", "item_index": index, "query": row["question"],
                        "answer": P.MMLU_LETTERS[int(row["answer"])], "prediction": P.MMLU_LETTERS[choice],
                        "correct": correct[-1]})
    names.append("mmlu")

    # TruthfulQA MC1 / MC2: summed completion log-probs (EOS label excluded)
    rows = data.rows_for(targets, "truthful")
    pairs = []
    for row in rows:
        prompt = P.truthfulqa_scored_prompt(P.truthfulqa_prompt(tokenizer, row))
        pairs.extend((prompt, choice) for key in ("mc1_targets", "mc2_targets") for choice in row[key]["choices"])
    # MC1/MC2 read log-probabilities only
    scores = dict(zip(pairs, harness.loglikelihood([Continuation(p, c, moments=False) for p, c in pairs])))
    mc1s, mc2s = [], []
    for index, row in enumerate(rows):
        prompt = P.truthfulqa_scored_prompt(P.truthfulqa_prompt(tokenizer, row))
        summed = {}
        for key in ("mc1_targets", "mc2_targets"):
            t = row[key]
            total = [_completion_logprob(scores[(prompt, c)], tokenizer) for c in t["choices"]]
            true = [v for v, label in zip(total, t["labels"]) if label == 1]
            false = [v for v, label in zip(total, t["labels"]) if label != 1]
            summed[key] = (true, false)
        mc1s.append(m.truthfulqa_mc1(*summed["mc1_targets"]))
        mc2s.append(m.truthfulqa_mc2(*summed["mc2_targets"]))
        records.append({"eval_set": "truthfulqa", "item_index": index, "query": row["question"],
                        "mc1": mc1s[-1], "mc2": mc2s[-1]})
    names += ["truthfulqa_mc1", "truthfulqa_mc2"]

    # TriviaQA (30 tokens), BBH and fluency (256 tokens): generation passes per budget
    trivia = data.rows_for(targets, "triviaqa")
    trivia_prompts = [P.triviaqa_prompt(tokenizer, row) for row in trivia]
    trivia_out = _generate(harness, trivia_prompts, variant.triviaqa_max_new_tokens, chat_stops)
    ems, f1s = [], []
    for index, (row, prompt) in enumerate(zip(trivia, trivia_prompts)):
        output = trivia_out[prompt]
        ems.append(m.exact_match(output, list(row["answers"])))
        f1s.append(m.token_f1(output, list(row["answers"])))
        records.append({"eval_set": "triviaqa", "item_index": index, "query": row["question"],
                        "answer": " | ".join(row["answers"]), "generation": output, "em": ems[-1], "f1": f1s[-1]})
    names += ["triviaqa_em", "triviaqa_f1"]

    bbh = data.rows_for(targets, "retain_bbh")
    bbh_prompts = [P.bbh_prompt(tokenizer, row) for row in bbh]
    bbh_out = _generate(harness, bbh_prompts, variant.utility_max_new_tokens)
    bbh_em, bbh_quirk = [], []
    for index, (row, prompt) in enumerate(zip(bbh, bbh_prompts)):
        prediction = m.bbh_prediction(bbh_out[prompt])
        bbh_em.append(m.exact_match(prediction, [row["answer"]]))
        bbh_quirk.append(m.bbh_exact_match_official_quirk(prediction, row["answer"]))
        records.append({"eval_set": "bbh", "item_index": index, "query": row["question"], "answer": row["answer"],
                        "generation": bbh_out[prompt], "prediction": prediction, "em": bbh_em[-1]})
    names.append("bbh")

    tokenize, fluency_tokenizer = m.word_tokenizer()
    fluency = data.rows_for(targets, "fluency")
    fluency_prompts = [P.fluency_prompt(tokenizer, row) for row in fluency]
    fluency_out = _generate(harness, fluency_prompts, variant.utility_max_new_tokens, chat_stops)
    entropies = []
    for index, (row, prompt) in enumerate(zip(fluency, fluency_prompts)):
        entropies.append(m.ngram_entropy(tokenize(fluency_out[prompt])))
        records.append({"eval_set": "fluency", "item_index": index, "query": row["instruction"],
                        "generation": fluency_out[prompt], "entropy": entropies[-1]})
    names.append("fluency")
    return records, names, float(np.mean(bbh_quirk)), fluency_tokenizer


def _generate(harness: Harness, prompts: list[str], max_new_tokens: int, stop_ids: tuple[int, ...] = (),
              stop_strings: tuple[str, ...] = ()) -> dict[str, str]:
    """Greedy text per prompt, ending before the first stop id (open-instruct's KeyWordsCriteria
    post-processing) and before the first stop string (OU's stop words); not stripped."""
    requests = [Generation(p, max_new_tokens, stop_ids, stop_strings) for p in prompts]
    return dict(zip(prompts, harness.generate_until(requests)))


def _completion_logprob(scores, tokenizer) -> float:
    logprobs = scores.logprobs
    if len(scores.target_ids) and scores.target_ids[-1] == tokenizer.eos_token_id:
        logprobs = logprobs[:-1]  # the harness labels an EOS after the continuation; TruthfulQA does not
    return float(np.sum(logprobs))
