"""How a WMDP corpus file's lines become training documents (`corpus: {lines: ...}` of a run).

- `text` (default): every JSON line's `text` field (or the JSON string itself): the documents.
- `raw`: every line verbatim, JSON syntax included, as open-unlearning and SAGO train: their WMDP
  datasets load the .jsonl files with the Hugging Face `text` loader (one example per line, no JSON
  parsing; OU/SAGO configs/data/datasets/WMDP_{forget,retain}.yaml). Blank lines are skipped. The
  file is validated as for `text` first, so a broken corpus fails the same way in both modes.
"""
from __future__ import annotations

from pathlib import Path

LINE_MODES = ("text", "raw")


def check_mode(lines: str) -> None:
    if lines not in LINE_MODES:
        raise ValueError(f"corpus.lines must be one of {', '.join(LINE_MODES)} ('text': each JSON line's text "
                         f"field; 'raw': the JSON lines verbatim, as open-unlearning / SAGO train), got {lines!r}")


def corpus_documents(path: Path, lines: str = "text") -> list[str]:
    from evaluation.benchmarks.wmdp import data as wmdp_data

    check_mode(lines)
    texts = wmdp_data.corpus_texts(path)
    if lines == "text":
        return texts
    with Path(path).open(encoding="utf-8") as handle:
        return [line.rstrip("\r\n") for line in handle if line.strip()]
