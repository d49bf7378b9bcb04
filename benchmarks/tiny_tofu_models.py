"""The two tiny Llamas the evaluation-speed benchmarks run on TOFU: one randomly initialised (no
answer stops before the 200-token budget) and one fine-tuned for 2 epochs on `full` with the
tofu-tiny recipe (answers stop at their own EOS; about 2 min on 2 cores)."""
from __future__ import annotations

from pathlib import Path

RANDOM = "tiny-llama, random init (every answer runs to 200 tokens)"
FINETUNED = "tiny-llama fine-tuned on `full` (tofu-tiny recipe, 2 epochs)"


def random_model(data, folder: Path) -> Path:
    from evaluation import models
    from evaluation.benchmarks.tofu.data import vocabulary_texts

    return models.build_tiny_llama(vocabulary_texts(data), folder, seed=0, max_position_embeddings=512)


def finetuned_model(benchmark: str, data_dir: Path, folder: Path) -> Path:
    from evaluation import finetune

    finetune.run(benchmark, str(data_dir), "full", "tiny-llama", folder, preset="tofu-tiny", overrides={"epochs": 2},
                 progress=False)
    return Path(folder)
