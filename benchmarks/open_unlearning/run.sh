#!/usr/bin/env bash
# OU's TOFU evaluation (src/eval.py, experiment=eval/tofu/default) of an unlearn-bench model folder,
# offline, on local TOFU files. Writes OUT_DIR/TOFU_SUMMARY.json, TOFU_EVAL.json, run.log.
#   benchmarks/open_unlearning/run.sh MODEL_DIR DATA_DIR OUT_DIR [more hydra overrides]
#   OU_HOME (default benchmarks/scratch/open-unlearning), FORGET (forget10), BATCH (32, OU's default)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OU_HOME="$(realpath -m "${OU_HOME:-$HERE/../scratch/open-unlearning}")"
MODEL="$(realpath "$1")"; DATA="$(realpath "$2")"; OUT="$(realpath -m "$3")"; shift 3
FORGET="${FORGET:-forget10}"
PY="$OU_HOME/venv/bin/python"
[[ -x "$PY" && -f "$OU_HOME/code/src/eval.py" ]] || { echo "run.sh: no open-unlearning in $OU_HOME; run benchmarks/open_unlearning/setup.sh" >&2; exit 2; }
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_DATASETS_CACHE="$OUT/.hf-datasets"
args=(experiment=eval/tofu/default "hydra.searchpath=[file://$HERE/configs]" model=unlearn_bench_phi
      "model.model_args.pretrained_model_name_or_path=$MODEL" "model.tokenizer_args.pretrained_model_name_or_path=$MODEL"
      forget_split="$FORGET" holdout_split="holdout${FORGET#forget}" eval.tofu.batch_size="${BATCH:-32}"
      task_name=unlearn_bench_side_by_side "paths.output_dir=$OUT")
mkdir -p "$OUT"
cd "$OU_HOME/code"
# deepspeed prints a banner line on stdout: keep only the YAML
"$PY" src/eval.py --cfg job "${args[@]}" "$@" 2>/dev/null | grep -v '^\[20' > "$OUT/composed.yaml"
mapfile -t data_args < <("$PY" "$HERE/dataset_overrides.py" "$DATA" < "$OUT/composed.yaml")
[[ ${#data_args[@]} -gt 0 ]] || { echo "run.sh: no locuslab/TOFU dataset found in OU's config" >&2; exit 2; }
"$PY" src/eval.py "${args[@]}" "${data_args[@]}" "$@" > "$OUT/run.log" 2>&1
