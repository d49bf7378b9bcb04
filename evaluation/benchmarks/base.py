"""What a benchmark is: the one interface the pipeline, the harness and the leaderboard talk to.

A benchmark says
- how to open and validate its data (`open`: a local folder, or the Hub for real users) and, for a
  tiny twin, how to generate it (`generate`);
- which unlearning splits it has (`check_split`) and which training corpora a split provides
  (`unlearning_corpora`: QA pairs for TOFU, raw text for MUSE / WMDP / RWKU);
- its reference models: which split the target and the retain/retrain reference are fine-tuned on
  (`finetune_split`), or none when the base model is unlearned directly;
- its evaluator variants and the evaluation itself (`evaluate` → metrics, per-item table, evaluator
  block, cost), and how to read back a reference model's evaluation (`load_reference`);
- its headline forget / utility metrics and every metric it writes, declared once (`headline`,
  `metrics`: direction, range, and the function over the per-item table that both its evaluator and
  the bootstrap call; `evaluation/metrics/declaration.py`);
- the row flags the leaderboard sets from its metrics (`board_flags`).

Everything outside a benchmark's own modules goes through this class, so a new benchmark is a new
module (or folder) plus one registry line in `evaluation/benchmarks/__init__.py`. Importing a
benchmark definition must stay cheap (no torch): `ubench grid` and Snakemake plan with it.
"""
from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evaluation.metrics.declaration import MetricInfo

QA, TEXT = "qa", "text"
CONCATENATE, TRUNCATE = "concatenate", "truncate"  # how a raw-text corpus becomes training examples
TARGET, RETAIN = "target", "retain"
SCOPE_ALL, SCOPE_TRAJECTORY = "all", "trajectory"
SCOPES = (SCOPE_ALL, SCOPE_TRAJECTORY)
KS_FLOOR = "ks_floor"  # a RowFlag test: the leaderboard's `comparability.at_ks_floor`


@dataclass(frozen=True)
class Corpus:
    """The training data of one stream: question/answer pairs (loss on the answer tokens) or raw
    texts, loss on every token. Raw texts are either concatenated and cut into max_length-token
    chunks (`packing="concatenate"`, the default: OU's PretrainingDataset) or each document becomes
    one example truncated to max_length tokens (`packing="truncate"`: the official WMDP-RMU
    recipe). `max_length` fixes this corpus's example length (e.g. RMU's 512-token wikitext retain
    set next to 768-token cyber forget documents); None = the run's max_length."""

    kind: str                 # QA | TEXT
    items: tuple              # (question, answer) pairs, or strings
    source: str               # where it came from (file or Hub config), for messages and provenance
    official: bool = True     # False for stand-ins (e.g. MUSE-News retain_standin)
    packing: str = CONCATENATE
    max_length: int | None = None

    def __post_init__(self):
        if self.kind not in (QA, TEXT):
            raise ValueError(f"corpus kind must be {QA!r} or {TEXT!r}, got {self.kind!r}")
        if self.packing not in (CONCATENATE, TRUNCATE):
            raise ValueError(f"corpus packing must be {CONCATENATE!r} or {TRUNCATE!r}, got {self.packing!r}")
        if not self.items:
            raise ValueError(f"corpus {self.source} is empty")

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Headline:
    """The two axes a benchmark is judged on: candidate metric names, the first present is used."""

    forget: tuple[str, ...]
    utility: tuple[str, ...]
    main_variant: str | None = None   # None: the most common evaluator variant of the benchmark


@dataclass(frozen=True)
class MatchedLevel:
    """Where runs are compared at equal forgetting: the first point of a run's trajectory at which
    `metric` reaches the level, in the metric's forgetting direction (its `MetricInfo.better`).
    The level is `value`, or `scale * (reference model's value of metric) + offset` when
    `reference` names a reference role ("retain" or "target")."""

    metric: str
    reference: str | None = None
    value: float | None = None
    scale: float = 1.0
    offset: float = 0.0
    text: str = ""            # the level in words, for the page and the report

    def __post_init__(self):
        if (self.reference is None) == (self.value is None):
            raise ValueError("MatchedLevel needs exactly one of reference (a role) or value")


@dataclass(frozen=True)
class RowFlag:
    """A flag the leaderboard sets on a row (which then is not ranked) when a seed's `metric` sits
    where its value no longer tells models apart. `test` names the check the board applies:
    KS_FLOOR, the complete-separation floor of a two-sample KS p-value, where every model that
    separates the two sets fully gets the same number."""

    name: str                 # the flag as the leaderboard writes it
    metric: str
    test: str = KS_FLOOR


@dataclass
class EvalContext:
    """Everything one evaluation needs; built by `evaluation.evaluate.run`."""

    model: Any
    tokenizer: Any
    prompt_format: Any        # evaluation.prompts.PromptFormat
    data: Any                 # what `Benchmark.open` returned
    split: str
    variant: str
    reference: Any = None     # what `Benchmark.load_reference` returned, or None
    batch_size: int = 32
    progress: bool = True
    role: str = "unlearned"   # unlearned | target | retain (a retain model is its own reference)
    # "all": every metric; "trajectory": an intermediate point of a run's trajectory (evaluate_every),
    # where a benchmark may skip what the headline forget / utility metrics and `matched.metric` do
    # not need (MIA, extra suites); the metrics it returns must still be exact
    scope: str = "all"
    item_cap: int | None = None  # every eval set on its first N items (`--item-cap`; evaluation/benchmarks/item_cap.py)

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"evaluation scope must be one of {SCOPES}, got {self.scope!r}")


@dataclass
class EvalOutput:
    """`result` holds the metrics.json blocks `metrics`, `metric_details`, `flags`, `evaluator`."""

    result: dict[str, Any]
    table: Any                # pandas.DataFrame, one row per item (per_item.parquet)
    cost: dict[str, Any] = field(default_factory=dict)


class Benchmark:
    name: str = "?"
    family: str = "?"                 # leaderboard family: tofu | muse | wmdp | rwku
    description: str = ""
    hub_id: str | None = None         # where real users get the data
    splits: tuple[str, ...] = ()      # the unlearning splits (`check_split` may accept a pattern instead)
    variants: tuple[str, ...] = ()
    default_variant: str = ""
    default_max_length: int = 512     # tokens per training example when a config does not say
    headline: Headline = Headline((), ())
    matched: MatchedLevel | None = None  # the forgetting level of "utility at matched forgetting"
    metrics: tuple[MetricInfo, ...] = ()  # every metric the evaluator writes, declared once
    board_flags: tuple[RowFlag, ...] = ()
    data_subdir: str | None = None    # folder under data_dir; None for a generated benchmark
    # data_subdir "": the folders read side by side in data_dir; `--data` naming the first one means its parent
    root_folders: tuple[str, ...] = ()
    fine_tunes_by_default: bool = False  # model `target: auto` fine-tunes (TOFU-like, tiny twins)
    tiny_finetune_preset: str | None = None  # the fine-tuning preset for the tiny Llama
    # the fine-tuning presets (evaluation.finetune_presets.FinetunePreset) this benchmark declares, by
    # name; `ubench finetune --preset` and the grid choose among every benchmark's presets
    finetune_presets: dict[str, Any] = {}
    # an older top-level config key that holds this generated benchmark's options (read before
    # `generators: {name: ...}`, which wins); None = none
    generator_config_key: str | None = None
    # keyword options `unlearning_corpora` accepts, set per run by the `corpus:` hyperparameter
    # (e.g. WMDP: retain = the topic's retain corpus or wikitext, packing); () = none
    corpus_options: tuple[str, ...] = ()
    # what attacks and tools may rely on (methods.attacks: `needs`); "prompts_from_format": every
    # prompt the evaluator scores is built from the run's prompt format
    capabilities: frozenset[str] = frozenset()

    # ---- data ---------------------------------------------------------------------------------
    @property
    def generated(self) -> bool:
        return self.data_subdir is None

    def generate(self, out_dir: str | Path, **options) -> Path:
        raise ValueError(f"benchmark {self.name!r} is read from data_dir, not generated")

    def open(self, folder: str | Path | None):
        """The benchmark's data object, validated (counts, fields, relations) before any model loads."""
        raise NotImplementedError

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"split {split!r} is not a {self.name} unlearning split; "
                             f"choose from {', '.join(self.splits)}")

    def check_variant(self, variant: str) -> None:
        if variant not in self.variants:
            raise ValueError(f"unknown {self.name} evaluator variant {variant!r}; "
                             f"available: {', '.join(self.variants)}")

    def unlearning_corpora(self, data, split: str, **options) -> dict[str, Corpus | None]:
        """{"forget": Corpus, "retain": Corpus or None} for unlearning split `split`; `options` are
        the run's `corpus:` hyperparameter (only names in `corpus_options`)."""
        raise NotImplementedError

    def corpora_for_run(self, data, split: str, options: dict | None) -> dict[str, Corpus | None]:
        """`unlearning_corpora` with the run's corpus options checked against `corpus_options`."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.corpus_options))
        if unknown:
            accepted = ", ".join(self.corpus_options) or "none"
            raise ValueError(f"corpus option(s) {unknown} are not accepted by benchmark {self.name!r}; "
                             f"accepted: {accepted}")
        return self.unlearning_corpora(data, split, **options)

    def identity_notes(self, data, split: str) -> dict[str, str]:
        """Extra identity fields a run on this split carries (e.g. a non-official retain corpus)."""
        return {}

    # ---- reference models ---------------------------------------------------------------------
    def default_finetune_preset(self, model: str) -> str | None:
        """The fine-tuning preset `model` trains with on this benchmark when none is named: the tiny
        preset for the tiny Llama; None where the benchmark states no recipe for `model`."""
        return self.tiny_finetune_preset if model == "tiny-llama" else None

    def finetune_split(self, role: str, split: str) -> str | None:
        """The training split of the target (role "target") or the retain/retrain reference (role
        "retain") for unlearning split `split`; None when this benchmark does not fine-tune it."""
        return None

    def finetune_corpus(self, data, train_split: str, extra_splits: tuple[str, ...] = ()) -> Corpus:
        raise ValueError(f"benchmark {self.name!r} has no fine-tuning split {train_split!r}")

    def paraphrased_answers(self, data, forget_split: str) -> dict[str, str]:
        """{question: paraphrased answer} of every item of `forget_split` (a fine-tuning recipe's
        `paraphrased_forget`); only benchmarks that ship paraphrases have them."""
        raise ValueError(f"benchmark {self.name!r} ships no paraphrased answers: `paraphrased_forget` "
                         f"(finetune: {{target: ...}}) is for QA benchmarks whose forget items carry paraphrased answers")

    def prepare_tiny_tokenizer(self, tokenizer) -> None:
        """Adjust the tiny Llama's fresh word-level tokenizer before fine-tuning (saved with the
        model), e.g. set a chat template the benchmark's prompts need. Default: nothing."""

    def vocabulary_texts(self, data) -> list[str]:
        """Every string of the benchmark (for the tiny Llama's word-level tokenizer)."""
        raise NotImplementedError

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate(self, context: EvalContext) -> EvalOutput:
        raise NotImplementedError(f"evaluation of {self.name} is not implemented")

    def trajectory_metrics(self, metrics: dict[str, Any]) -> list[str]:
        """What an intermediate trajectory point must carry: the first headline forget and utility
        candidates present in `metrics` (a full evaluation's) and `matched.metric`."""
        names = [next((m for m in candidates if m in metrics), None)
                 for candidates in (self.headline.forget, self.headline.utility)]
        names.append(self.matched.metric if self.matched is not None else None)
        return list(dict.fromkeys(n for n in names if n is not None))

    def load_reference(self, folder: str | Path):
        """A reference model's evaluation (the output folder of `ubench evaluate` on it)."""
        raise ValueError(f"benchmark {self.name!r} takes no reference evaluation")

    def metric_info(self, metric: str) -> MetricInfo | None:
        return next((info for info in self.metrics if info.name == metric), None)

    def resampled_metrics(self) -> frozenset[str]:
        """The metrics `metric_from_items` recomputes: those declared with `from_items`."""
        return frozenset(info.name for info in self.metrics if info.resampled)

    def metric_from_items(self, metric: str, table, draw: Callable[[str, int], Any], *, split: str,
                          evaluator: dict[str, Any], references: dict[str, Any]):
        """Metric `metric` recomputed from item samples of one evaluation's per-item table (its
        `per_item.parquet`) by the metric's declared `from_items`, the function the evaluator
        reported it with (the leaderboard's paired bootstrap, attacks on held-out items).

        `draw(item_set, n)` returns a (samples, n) integer array of positions into the n items of
        one item set in the benchmark's fixed item order; every model of a comparison gets the same
        positions for the same set (paired), and each set is drawn independently. `references` maps
        a reference role ("target", "retain") to that model's per-item table where one exists.
        Returns a float array of shape (samples,). Raises ValueError when the metric has no
        `from_items` or the table cannot give it (missing item set or reference)."""
        info = self.metric_info(metric)
        if info is None or info.from_items is None:
            from evaluation.benchmarks.resampling import unknown_metric

            raise unknown_metric(self, metric, self.resampled_metrics())
        return info.from_items(table, draw, split=split, evaluator=evaluator, references=references)

    def add_commands(self, subparsers, formatter_class) -> None:
        """Register this benchmark family's own `ubench` subcommands (called once per family, on its
        first registered benchmark). Default: none."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "description": self.description,
                "splits": list(self.splits), "variants": list(self.variants),
                "default_variant": self.default_variant, "hub_id": self.hub_id,
                "generated": self.generated}


def qa_pairs(rows: list[dict], source: str, *, official: bool = True) -> Corpus:
    return Corpus(QA, tuple((row["question"], row["answer"]) for row in rows), source, official)


def with_paraphrased_answers(corpus: Corpus, paraphrases: dict[str, str], forget_split: str) -> Corpus:
    """`corpus` with the answer of every question of `paraphrases` (one forget split's) replaced by
    its paraphrase. Every forget question must be in the corpus: a recipe that paraphrases a split
    its training data does not hold (e.g. a retain model's) is a mistake, not a no-op."""
    if corpus.kind != QA:
        raise ValueError(f"paraphrased_forget={forget_split}: corpus {corpus.source} is raw text, not QA pairs")
    present = {question for question, _ in corpus.items}
    missing = [question for question in paraphrases if question not in present]
    if missing:
        raise ValueError(f"paraphrased_forget={forget_split}: {len(missing)} of {len(paraphrases)} forget questions "
                         f"are not in the training data {corpus.source} (e.g. {missing[0]!r}); it applies to a "
                         f"target's fine-tune (`finetune: {{target: {{paraphrased_forget: {forget_split}}}}}`)")
    items = tuple((question, paraphrases.get(question, answer)) for question, answer in corpus.items)
    return dataclasses.replace(corpus, items=items,
                               source=f"{corpus.source} with the {forget_split} answers paraphrased", official=False)


Generator = Callable[..., Path]
