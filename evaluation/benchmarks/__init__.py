"""Benchmarks by name. Each entry says how to open its data folder; MUSE, WMDP and RWKU join here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from evaluation.benchmarks import tofu, tofu_tiny


@dataclass(frozen=True)
class Benchmark:
    name: str
    open: Callable[[str | Path | None], object]  # data folder (None: the Hub) -> data object
    splits: tuple[str, ...]  # the unlearning splits (what `--split` accepts)
    description: str


def _open_tofu(folder: str | Path | None) -> tofu.TofuData:
    data = tofu.official(folder)
    data.validate()  # counts and split relations fail loudly here, before any model is loaded
    return data


def _open_tofu_tiny(folder: str | Path | None) -> tofu.TofuData:
    if folder is None:
        raise ValueError("tofu-tiny has no Hub copy: generate it with `ubench tofu-tiny --out DIR` "
                         "and pass --data DIR")
    data = tofu.TofuData(folder, expected_counts=tofu_tiny.expected_counts(folder))
    data.validate()
    return data


BENCHMARKS: dict[str, Benchmark] = {
    "tofu": Benchmark("tofu", _open_tofu, ("forget01", "forget05", "forget10"),
                      "TOFU (locuslab/TOFU): 200 fictitious authors x 20 QA"),
    "tofu-tiny": Benchmark("tofu-tiny", _open_tofu_tiny, ("forget01", "forget05", "forget10"),
                           "synthetic TOFU-schema benchmark for CPU runs (`ubench tofu-tiny`)"),
}


def get(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; available: {', '.join(sorted(BENCHMARKS))}") from None
