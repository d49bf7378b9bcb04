#!/usr/bin/env bash
# Set up open-unlearning (OU) next to unlearn-bench, for benchmarks/bench_vs_open_unlearning.py:
# OU's code at a pinned commit (unmodified) and a venv of its own with the package versions of
# our requirements.lock wherever both projects use a package. Safe to rerun.
#   benchmarks/open_unlearning/setup.sh [OU_HOME]      default OU_HOME: benchmarks/scratch/open-unlearning
#   OU_SOURCE=<git url or local clone/mirror>          default https://github.com/locuslab/open-unlearning
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OU_HOME="$(realpath -m "${1:-$REPO/benchmarks/scratch/open-unlearning}")"
OU_SOURCE="${OU_SOURCE:-https://github.com/locuslab/open-unlearning}"
OU_COMMIT=d3d7cf9e6b3c125d16687d4232680d8d83548f1a   # 2025-12-24, the version compared in results/

mkdir -p "$OU_HOME"
if [[ ! -f "$OU_HOME/code/src/eval.py" ]]; then
  rm -rf "$OU_HOME/code"
  git clone --quiet "$OU_SOURCE" "$OU_HOME/code"
  git -C "$OU_HOME/code" checkout --quiet "$OU_COMMIT"
fi
[[ -x "$OU_HOME/venv/bin/python" ]] || python3 -m venv "$OU_HOME/venv"
PIP="$OU_HOME/venv/bin/pip"
"$PIP" install --quiet torch==2.13.0   # pinned first: an unpinned torch pulls a multi-GB CUDA build
# Shared packages at our locked versions. OU imports lm-eval and deepspeed even to evaluate TOFU
# (src/evals/__init__.py, src/trainer/unlearn/rmu.py); lm-eval 0.4.8, OU's pin, fails on transformers 5.
shared=$(grep -iE '^(transformers|datasets|accelerate|numpy|rouge-score|scipy|scikit-learn|tokenizers|safetensors|huggingface-hub|lm-eval)==' "$REPO/requirements.lock")
# shellcheck disable=SC2086
"$PIP" install --quiet $shared hydra-core==1.3.8 hydra_colorlog==1.2.0 deepspeed==0.19.8
echo "$OU_COMMIT" > "$OU_HOME/COMMIT"
echo "open-unlearning $OU_COMMIT ready in $OU_HOME"
