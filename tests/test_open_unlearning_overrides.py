"""benchmarks/open_unlearning/dataset_overrides.py points OU's TOFU datasets, and only those, at local files."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "open_unlearning" / "dataset_overrides.py"

COMPOSED = """
eval:
  tofu:
    metrics:
      forget_Q_A_Prob:
        datasets:
          TOFU_QA_forget:
            args:
              hf_args: {path: locuslab/TOFU, name: forget10_perturbed, split: train}
      mmlu_like:
        datasets:
          other:
            args:
              hf_args: {path: cais/mmlu, name: all}
    batch_size: 32
"""


def test_only_tofu_nodes_get_local_files(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path) + "/"], input=COMPOSED, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    node = "eval.tofu.metrics.forget_Q_A_Prob.datasets.TOFU_QA_forget.args.hf_args"
    assert out == [f"{node}.path=json", f"+{node}.data_files={tmp_path}/" + "${.name}.json"]
