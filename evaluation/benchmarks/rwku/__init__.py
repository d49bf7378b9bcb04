"""RWKU and rwku-tiny on the benchmark interface (benchmarks.md §6, metrics.md §4).

Splits (the unlearning setting and the evaluated targets in one name):
- `target-<id>`: single target, forget = that target's `positive` texts (GA / NPO recipe);
- `target-<id>-passage`: single target, forget = that target's Wikipedia `passage` texts (GA-passage);
- `batch-<a>-<b>`: SAGO's batch setting, forget = passages of targets a..b, retain = passages of
  the last (b−a+1) targets (`batch-1-50`: retain = targets 151-200), evaluation on targets a..b.
Real RWKU unlearns the base model directly (no target fine-tuning, no retain model).
"""
from __future__ import annotations

import re
from pathlib import Path

from evaluation.benchmarks.base import TARGET, TEXT, Benchmark, Corpus, EvalContext, EvalOutput, Headline, MatchedLevel
from evaluation.benchmarks import resampling
from evaluation.benchmarks.rwku import probe_types, resample
from evaluation.finetune_presets import FinetunePreset
from evaluation.metrics.declaration import HIGHER, LOWER, NON_NEGATIVE, NON_POSITIVE, UNBOUNDED, UNIT, MetricInfo

SPLIT = re.compile(r"^(?:target-(?P<target>\d+)(?P<passage>-passage)?|batch-(?P<first>\d+)-(?P<last>\d+))$")
TINY_FINETUNE_SPLIT = "all-targets"
UTILITY_COLUMNS = {"mmlu": ("mmlu", "correct"), "bbh": ("bbh", "em"), "truthfulqa_mc1": ("truthfulqa", "mc1"),
                   "truthfulqa_mc2": ("truthfulqa", "mc2"), "triviaqa_em": ("triviaqa", "em"),
                   "triviaqa_f1": ("triviaqa", "f1"), "fluency": ("fluency", "entropy")}  # metric: (set, column)

METRICS = (  # ROUGE-L recalls and accuracies are fractions here (the paper prints x100)
    MetricInfo("forget_fb", LOWER, "forget level 1 (fill-in-blank) ROUGE-L recall", UNIT,
               from_items=resample.level_from_items("forget_level1")),
    MetricInfo("forget_qa", LOWER, "forget level 2 (question answering) ROUGE-L recall", UNIT,
               from_items=resample.level_from_items("forget_level2")),
    MetricInfo("forget_aa", LOWER, "forget level 3 (adversarial attack) ROUGE-L recall", UNIT,
               from_items=resample.level_from_items("forget_level3")),
    MetricInfo("forget_all", LOWER, "mean of forget FB, QA, AA", UNIT, from_items=resample.all_from_items("forget_all")),
    *probe_types.METRICS,  # forget_aa per level-3 probe type
    MetricInfo("neighbor_fb", HIGHER, "neighbour level 1 ROUGE-L recall", UNIT,
               from_items=resample.level_from_items("neighbor_level1")),
    MetricInfo("neighbor_qa", HIGHER, "neighbour level 2 ROUGE-L recall", UNIT,
               from_items=resample.level_from_items("neighbor_level2")),
    MetricInfo("neighbor_all", HIGHER, "mean of neighbour FB, QA", UNIT,
               from_items=resample.all_from_items("neighbor_all")),
    # LOSS is a mean token log-likelihood and Zlib that over a length (<= 0); Min-K%++ averages
    # standardised log-probabilities, which take either sign
    *(MetricInfo(f"mia_{s}_{a}", LOWER if s == "fm" else HIGHER,
                 f"set mean of {a} on {'forget_mia' if s == 'fm' else 'retain_mia'} (higher = more member-like)",
                 UNBOUNDED if a == "mink20" else NON_POSITIVE,
                 from_items=resample.mia_from_items("forget_mia" if s == "fm" else "retain_mia", f"mia_{a}"))
      for s in ("fm", "rm") for a in ("loss", "zlib", "mink20")),
    *(MetricInfo(name, HIGHER, text, bounds, from_items=resampling.mean_from_items(*UTILITY_COLUMNS[name]))
      for name, text, bounds in (
          ("mmlu", "5-shot MMLU accuracy (next token over A-D)", UNIT),
          ("bbh", "BBH CoT exact match", UNIT),
          ("truthfulqa_mc1", "TruthfulQA MC1", UNIT),
          ("truthfulqa_mc2", "TruthfulQA MC2", UNIT),
          ("triviaqa_em", "TriviaQA exact match", UNIT),
          ("triviaqa_f1", "TriviaQA token F1", UNIT),
          ("fluency", "mean weighted 2/3-gram entropy of AlpacaEval answers", NON_NEGATIVE))),
)


def parse_split(split: str) -> dict:
    match = SPLIT.match(split)
    if not match:
        raise ValueError(f"RWKU split {split!r} is not target-<id>, target-<id>-passage or batch-<first>-<last> "
                         "(e.g. target-1, target-1-passage, batch-1-50)")
    if match.group("target"):
        target = int(match.group("target"))
        return {"kind": "passage" if match.group("passage") else "positive", "targets": [target]}
    first, last = int(match.group("first")), int(match.group("last"))
    if not 1 <= first <= last:
        raise ValueError(f"RWKU split {split!r}: the batch range must be 1 <= first <= last")
    return {"kind": "batch", "targets": list(range(first, last + 1))}


def batch_retain_targets(targets: list[int], num_targets: int, split: str) -> list[int]:
    """The last len(targets) targets (SAGO: 1-50 → 151-200); they must not overlap the forget range."""
    retain = list(range(num_targets - len(targets) + 1, num_targets + 1))
    if targets[-1] > num_targets:
        raise ValueError(f"RWKU split {split!r}: target id {targets[-1]} is out of range (1..{num_targets})")
    if set(retain) & set(targets):
        raise ValueError(f"RWKU split {split!r}: the retain targets {retain[0]}-{retain[-1]} (the last "
                         f"{len(targets)}) overlap the forget range; use a range of at most {num_targets // 2} targets")
    return retain


class Rwku(Benchmark):
    name = "rwku"
    family = "rwku"
    description = "RWKU (jinzhuoran/RWKU): 200 real famous people, zero-shot unlearning"
    splits = ("target-1", "target-1-passage", "batch-1-50")   # examples; any id / range is accepted
    variants = ("official", "official_as_published", "sago")
    default_variant = "official"
    default_max_length = 512      # RWKU cutoff 512
    headline = Headline(forget=("forget_all",), utility=("neighbor_all",), main_variant="official")
    matched = MatchedLevel("forget_all", reference=TARGET, scale=0.5,
                           text="half the target model's forget score (mean of FB, QA, AA)")
    metrics = METRICS
    data_subdir = "rwku"
    fine_tunes_by_default = False
    tiny_finetune_preset = "rwku-tiny"
    finetune_presets = {
        # rwku-tiny on tiny-llama: raw text (passages, neighbour texts, level-1/2 probes in the tiny
        # chat format); positions up to 512 so BBH / fluency prompts plus 256 new tokens fit.
        "rwku-tiny": FinetunePreset(lr=3e-3, epochs=60, batch_size=16, grad_accum=1, weight_decay=0.0,
                                    max_length=64, tiny_model={"max_position_embeddings": 512}),
    }
    expected_targets: int | None = 200

    @property
    def hub_id(self):
        from evaluation.benchmarks.rwku.data import HUB_ID

        return HUB_ID

    def check_split(self, split):
        parse_split(split)

    def open(self, folder):
        from evaluation.benchmarks.rwku import data

        if folder is None:
            return data.from_hub()
        return data.RwkuData.from_folder(folder, expected_targets=self._expected(folder)).validate()

    def _expected(self, folder) -> int | None:
        return self.expected_targets

    def unlearning_corpora(self, data, split):
        spec = parse_split(split)
        targets = spec["targets"]
        for target in targets:
            data.target(target)  # out-of-range ids fail here, naming the id
        if spec["kind"] == "batch":
            retain = batch_retain_targets(targets, data.num_targets, split)
            return {"forget": self._corpus(data, targets, "passage"),
                    "retain": self._corpus(data, retain, "passage")}
        return {"forget": self._corpus(data, targets, spec["kind"]), "retain": None}

    @staticmethod
    def _corpus(data, targets, name) -> Corpus:
        return Corpus(TEXT, data.texts(targets, name), f"{data.source} {name}.json of targets "
                      f"{targets[0]}-{targets[-1]}" if len(targets) > 1 else f"{data.source} {name}.json of target {targets[0]}")

    def prepare_tiny_tokenizer(self, tokenizer) -> None:
        from evaluation.benchmarks.rwku import prompts

        tokenizer.chat_template = prompts.TINY_CHAT_TEMPLATE  # the word-level tokenizer has none

    def vocabulary_texts(self, data) -> list[str]:
        from evaluation.benchmarks.rwku import prompts

        texts = [prompts.TINY_CHAT_TEMPLATE, "User: Assistant: Answer: A: Q: NOANSWER", prompts.TRUTHFULQA_QA_PRIMER,
                 prompts.TRIVIAQA_FEW_SHOT, prompts.FILL_BLANK, prompts.BRIEF, prompts.BRIEF_INCONTEXT,
                 "The following are multiple choice questions (with answers) about Please following the previous "
                 "examples and answer the given question. A. B. C. D. Following previous examples, answer the "
                 "following questions and end with 'so the answer is' Instruction:"]
        for target in data.targets:
            for path in sorted(data.target(target).folder.glob("*.json")):
                for row in data.rows(target, path.stem):
                    texts.extend(_strings(row))
        return texts

    def evaluate(self, context: EvalContext) -> EvalOutput:
        from evaluation.benchmarks.rwku import evaluator

        spec = parse_split(context.split)
        for target in spec["targets"]:
            context.data.target(target)
        variant = evaluator.get_variant(context.variant)
        # a trajectory point needs the forget and neighbour probes only: no MIA / utility suites
        utility = (evaluator.utility_targets(context.data, spec["targets"], strict=spec["kind"] != "batch")
                   if variant.utility and context.scope != "trajectory" else [])
        scope = evaluator.Scope(spec["targets"], utility)
        data = context.data
        if context.item_cap is not None:
            from evaluation.benchmarks.item_cap import CappedData

            data = CappedData(data, context.item_cap)
        result, table, harness = evaluator.evaluate(context.model, context.tokenizer, data, scope, variant,
                                                    batch_size=context.batch_size, progress=context.progress)
        result["evaluator"]["setting"] = {"positive": "single target (positive)", "passage": "single target (passage)",
                                          "batch": "batch"}[spec["kind"]]
        result["evaluator"]["data"] = context.data.source
        result["evaluator"]["item_cap"] = context.item_cap
        return EvalOutput(result, table, harness.cost())


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


class RwkuTiny(Rwku):
    name = "rwku-tiny"
    description = "synthetic RWKU-layout benchmark of fictional people for CPU runs (`ubench data generate --benchmark rwku-tiny`)"
    splits = ("batch-1-4", "target-1", "target-1-passage")
    default_max_length = 64
    data_subdir = None
    fine_tunes_by_default = True

    @property
    def hub_id(self):
        return None

    def generate(self, out_dir, **options) -> Path:
        from evaluation.benchmarks.rwku import tiny

        targets = int(options.pop("targets", tiny.DEFAULT_TARGETS))
        seed = int(options.pop("seed", tiny.DEFAULT_SEED))
        if options:
            raise ValueError(f"unknown rwku-tiny generator option(s) {sorted(options)}; accepted: targets, seed")
        return tiny.write(out_dir, targets=targets, seed=seed)

    def open(self, folder):
        if folder is None:
            raise ValueError("rwku-tiny has no Hub copy: generate it with `ubench data generate --benchmark "
                             "rwku-tiny --out DIR` and pass --data DIR")
        return super().open(folder)

    def _expected(self, folder):
        from evaluation.benchmarks.rwku import tiny

        return tiny.expected_targets(folder)

    def finetune_split(self, role, split):
        self.check_split(split)
        return TINY_FINETUNE_SPLIT if role == TARGET else None

    def finetune_corpus(self, data, train_split, extra_splits=()) -> Corpus:
        """The tiny target stands in for a pretrained instruct model that knows every person: it is
        fine-tuned on (1) the passages of all targets, (2) the retain_mia texts (the neighbours'
        descriptions) and (3) every level-1/2 forget and neighbour probe rendered as the official
        prompt through the tiny chat template followed by its answer (the instruction-following a
        real model brings). Level-3 probes are never trained on: AA measures transfer."""
        from evaluation.benchmarks.rwku import prompts

        if train_split != TINY_FINETUNE_SPLIT:
            raise ValueError(f"rwku-tiny fine-tunes its target on {TINY_FINETUNE_SPLIT!r}, got {train_split!r}")
        targets = sorted(data.targets)
        texts = list(data.texts(targets, "passage")) + list(data.texts(targets, "retain_mia"))
        for name in ("forget_level1", "forget_level2", "neighbor_level1", "neighbor_level2"):
            for row in data.rows_for(targets, name):
                message, suffix = prompts.probe_message(int(name[-1]), row["type"], row["query"])
                texts.append(prompts.render_tiny_chat(message, bos="") + (prompts.ANSWER_TAG if suffix else "")
                             + " " + row["answer"])
        return Corpus(TEXT, tuple(texts), f"{data.source} passages + retain_mia + level-1/2 probes of all targets")


RWKU, RWKU_TINY = Rwku(), RwkuTiny()
