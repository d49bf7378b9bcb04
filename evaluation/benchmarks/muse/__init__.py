"""MUSE (muse-bench/MUSE-News, MUSE-Books) and its tiny twin on the benchmark interface.

Unlearning corpora are raw text: forget = raw/forget, retain = raw/retain1 (the local News copy has
only raw/retain_standin, used instead and recorded as `retain_corpus: standin`). The target is
fine-tuned on forget + retain, the retrained reference on retain only (muse-tiny; the real
benchmark takes muse-bench's Llama-2 target/retrain models from the Hub). Evaluation:
`evaluator.py` (variants `official`, `ou`).
"""
from __future__ import annotations

from pathlib import Path

from evaluation.benchmarks.base import (RETAIN, TARGET, TEXT, Benchmark, Corpus, EvalContext, EvalOutput, Headline,
                                         MatchedLevel)
from evaluation.benchmarks import resampling
from evaluation.benchmarks.muse import resample, tiny
from evaluation.finetune_presets import FinetunePreset
from evaluation.metrics.declaration import CLOSER_TO_ZERO, HIGHER, LOWER, PERCENT, PRIVLEAK, UNIT, MetricInfo

HUB_IDS = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
TRAIN_SPLITS = {TARGET: "full", RETAIN: "retain"}  # fine-tuning splits: forget + retain, retain only
MUSE_METRICS = (  # ROUGE x100 in the official variant, fractions in OU's: PERCENT holds both
    MetricInfo("verbmem_forget", LOWER, "ROUGE-L F1 of 128-token continuations of forget text prefixes", PERCENT,
               from_items=resample.rouge_from_items("verbmem_forget")),
    MetricInfo("knowmem_forget", LOWER, "ROUGE-L F1 of 10-shot answers to forget-corpus questions", PERCENT,
               from_items=resample.rouge_from_items("knowmem_forget")),
    MetricInfo("knowmem_retain", HIGHER, "ROUGE-L F1 of 10-shot answers to retain-corpus questions (utility)",
               PERCENT, from_items=resample.rouge_from_items("knowmem_retain")),
    MetricInfo("privleak", CLOSER_TO_ZERO, "Min-40% AUC forget vs holdout relative to the retrained model, %",
               PRIVLEAK, computed_by="evaluator.aggregate: the variant's AUC against the retrained model's or a "
                                     "published one"),
    MetricInfo("extraction_strength", LOWER, "OU extraction strength of the verbmem gt (ou variant)", UNIT,
               from_items=resampling.mean_from_items("verbmem_forget", "extraction_strength")),
)


def retain_corpus_label(data) -> str:
    return "retain1" if data.retain_official else "standin"


class Muse(Benchmark):
    name = "muse"
    family = "muse"
    description = "MUSE (muse-bench/MUSE-News; MUSE-Books declared, not in the local data)"
    hub_id = HUB_IDS["news"]
    splits = ("news", "books")
    variants = ("official", "ou", "ou_all_tokens")
    default_variant = "official"
    default_max_length = 2048  # OU chunk length
    headline = Headline(forget=("knowmem_forget", "verbmem_forget"), utility=("knowmem_retain",))
    matched = MatchedLevel("knowmem_forget", reference=RETAIN,
                           text="the retrained model's KnowMem on the forget set")
    metrics = MUSE_METRICS
    data_subdir = "muse"
    fine_tunes_by_default = False  # muse-bench publishes the Llama-2 target and retrain models
    tiny_finetune_preset = "muse-tiny"
    finetune_presets = {
        # muse-tiny on tiny-llama: memorises the fictional articles (target: forget + retain, retrained
        # reference: retain only) within the demo budget; see evaluation/README.md.
        "muse-tiny": FinetunePreset(lr=3e-3, epochs=60, batch_size=8, grad_accum=1, weight_decay=0.0,
                                    max_length=128),
    }

    # ---- data ---------------------------------------------------------------------------------
    def open(self, folder):
        return MuseCollection(self, folder)

    @staticmethod
    def load_corpus(folder, split: str):
        return _load_real(folder, split)

    def local_splits(self, folder) -> list[str]:
        """The corpora a local folder holds (one subfolder per split: news/, books/)."""
        return [split for split in self.splits if (Path(folder) / split).is_dir()]

    def corpus_data(self, data, split: str):
        self.check_split(split)
        return data.corpus(split)

    def unlearning_corpora(self, data, split):
        corpus = self.corpus_data(data, split)
        retain = corpus.retain_file
        return {"forget": Corpus(TEXT, tuple(corpus["raw/forget"]), corpus.where("raw/forget")),
                "retain": Corpus(TEXT, tuple(corpus[retain]), corpus.where(retain), official=corpus.retain_official)}

    def identity_notes(self, data, split):
        corpus = self.corpus_data(data, split)
        return {} if corpus.retain_official else {"retain_corpus": "standin"}

    # ---- reference models ---------------------------------------------------------------------
    def finetune_split(self, role, split):
        self.check_split(split)
        return TRAIN_SPLITS.get(role)

    def train_texts(self, corpus, train_split: str) -> tuple[list[str], list[str]]:
        """(texts, files) of a fine-tuning split: `full` = forget + retain, `retain` = retain."""
        retain = [corpus.retain_file] + [n for n in ("raw/retain2",) if n in corpus.rows]
        files = {"full": ["raw/forget"] + retain, "retain": retain}.get(train_split)
        if files is None:
            raise ValueError(f"MUSE fine-tunes on 'full' (target: forget + retain) or 'retain' (retrained "
                             f"reference), got {train_split!r}")
        return [text for name in files for text in corpus[name]], files

    def finetune_corpus(self, data, train_split, extra_splits=()):
        split, _, part = train_split.partition(":")  # "news:full" style names are accepted too
        corpus = self.corpus_data(data, split) if part else self.default_corpus(data)
        texts, files = self.train_texts(corpus, part or train_split)
        for extra in extra_splits:
            texts += list(corpus[extra])
        return Corpus(TEXT, tuple(texts), " + ".join(corpus.where(f) for f in files), official=corpus.retain_official)

    def default_corpus(self, data):
        return data.corpus("news")

    def vocabulary_texts(self, data) -> list[str]:
        corpus = self.default_corpus(data)
        texts = ["Question: Answer:"]
        for rows in corpus.rows.values():
            for row in rows:
                texts.extend(row.values() if isinstance(row, dict) else [row])
        return texts

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate(self, context: EvalContext) -> EvalOutput:
        from evaluation.benchmarks.muse import evaluator

        corpus = self.corpus_data(context.data, context.split)
        if context.item_cap is not None:
            corpus = corpus.head(context.item_cap)
        result, table, harness = evaluator.evaluate(
            context.model, context.tokenizer, corpus, evaluator.get_variant(context.variant), context.reference,
            retain_corpus=retain_corpus_label(corpus) + ("" if corpus.retain_official else " (non-official)"),
            batch_size=context.batch_size, progress=context.progress, is_retain_model=context.role == RETAIN,
            scope=context.scope)
        result["evaluator"]["item_cap"] = context.item_cap
        return EvalOutput(result, table, harness.cost())

    def load_reference(self, folder):
        from evaluation.benchmarks.muse.evaluator import RetrainReference

        return RetrainReference.load(folder)


class MuseCollection:
    """The corpora of a MUSE data folder (news/, books/). Every corpus the folder holds is read and
    validated here, when the benchmark is opened, so a data error comes before any model loads; a
    corpus the folder lacks (MUSE-Books locally) and the Hub copy (folder None) are read on first use."""

    def __init__(self, bench: Muse, folder):
        self.bench, self.folder, self._cache = bench, folder, {}
        if folder is None:
            return
        from evaluation.benchmarks.muse.data import MuseDataError

        if not Path(folder).is_dir():
            raise MuseDataError(f"MUSE data folder {folder} not found (expected {folder}/news/...)")
        present = bench.local_splits(folder)
        if not present:
            raise MuseDataError(f"MUSE data folder {folder} holds no corpus: expected "
                                f"{' or '.join(f'{folder}/{s}/' for s in bench.splits)} in MUSE's layout")
        for split in present:
            self.corpus(split)

    def corpus(self, split: str):
        if split not in self._cache:
            self._cache[split] = self.bench.load_corpus(self.folder, split)
        return self._cache[split]


def _load_real(folder, split: str):
    from evaluation.benchmarks.muse import data

    if folder is None:
        return data.load_hub(HUB_IDS[split], split)
    where = Path(folder) / split
    if not where.is_dir():
        raise data.MuseDataError(
            f"MUSE-{split.capitalize()} is not in {folder} (no {where}/); the local copy holds only MUSE-News "
            f"(MUSE-Books is copyrighted text). Get it from the Hub ({HUB_IDS[split]}) by omitting --data.")
    return data.load_folder(where, split, data.OFFICIAL_COUNTS)



class MuseTiny(Muse):
    name = "muse-tiny"
    description = "synthetic MUSE-layout news corpus for CPU runs (`ubench data generate --benchmark muse-tiny`)"
    hub_id = None
    splits = ("news",)
    # fractions, like the published OU rows on the same leaderboard tab; every token scored (the
    # tiny rows stand beside no published OU number)
    default_variant = "ou_all_tokens"
    default_max_length = 128
    data_subdir = None
    fine_tunes_by_default = True

    def generate(self, out_dir, **options) -> Path:
        articles = int(options.pop("articles", tiny.DEFAULT_ARTICLES))
        seed = int(options.pop("seed", tiny.DEFAULT_SEED))
        if options:
            raise ValueError(f"unknown muse-tiny generator option(s) {sorted(options)}; accepted: articles, seed")
        return tiny.write(out_dir, articles, seed)

    def open(self, folder):
        if folder is None:
            raise ValueError("muse-tiny has no Hub copy: generate it with `ubench data generate --benchmark "
                             "muse-tiny --out DIR` and pass --data DIR")
        return MuseCollection(self, folder)

    @staticmethod
    def load_corpus(folder, split):
        from evaluation.benchmarks.muse import data

        return data.load_folder(folder, "tiny", tiny.expected_counts(folder))

    def local_splits(self, folder) -> list[str]:
        return list(self.splits)  # the folder itself is the one corpus


MUSE, MUSE_TINY = Muse(), MuseTiny()
