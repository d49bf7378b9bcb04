"""Benchmarks whose grids plan today but whose data streams and evaluation are not built yet
(MUSE, WMDP). Each is replaced by its own module as it is implemented; until then a job that
needs it stops with an error naming what is missing, and the paper grids still plan."""
from __future__ import annotations

import re

from evaluation.benchmarks.base import Benchmark, Headline
from evaluation.metrics.registry import HIGHER, LOWER, MetricInfo


class Planned(Benchmark):
    def __init__(self, name: str, family: str, description: str, splits: tuple[str, ...],
                 data_subdir: str, headline: Headline, metrics: dict[str, str], split_pattern: str | None = None):
        self.name, self.family, self.description = name, family, description
        self.metrics = tuple(MetricInfo(metric, better, "") for metric, better in metrics.items())
        self.splits, self.data_subdir, self.headline = splits, data_subdir, headline
        self.split_pattern = split_pattern
        self.variants = ("official",)
        self.default_variant = "official"

    def check_split(self, split):
        if self.split_pattern and re.fullmatch(self.split_pattern, split):
            return
        super().check_split(split)

    def _missing(self):
        return NotImplementedError(f"benchmark {self.name!r} is planned but not implemented yet: its data "
                                   "streams and evaluation do not exist in this version")

    def open(self, folder):
        raise self._missing()

    def unlearning_corpora(self, data, split):
        raise self._missing()


MUSE = Planned("muse", "muse", "MUSE (muse-bench/MUSE-News, MUSE-Books)", ("news", "books"), "muse",
               Headline(("knowmem_forget", "verbmem_forget"), ("knowmem_retain",)),
               {"knowmem_forget": LOWER, "verbmem_forget": LOWER, "knowmem_retain": HIGHER})
WMDP = Planned("wmdp", "wmdp", "WMDP (cais/wmdp) with MMLU utility", ("bio", "cyber", "chem"), "",
               Headline(("wmdp", "wmdp_bio", "wmdp_cyber", "wmdp_chem"), ("mmlu",)),
               {"wmdp": LOWER, "wmdp_bio": LOWER, "wmdp_cyber": LOWER, "wmdp_chem": LOWER, "mmlu": HIGHER})
