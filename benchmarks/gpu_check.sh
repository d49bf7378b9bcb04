#!/usr/bin/env bash
# The GPU checks of issues #13, #16 and #23, prepared to run unchanged on one GPU in <= 10 minutes with no network
# (the step limits below add up to 570 s):
#   1. the CUDA/bf16 tests (tests marked `gpu`, skipped elsewhere) and the collectives-device test;
#   2. single-GPU FSDP2 through `accelerate launch` (benchmarks/fsdp_check.py: none / GRU / NPO+PCGrad /
#      GradDiff+PCGrad on bf16 master weights,
#      bf16 compute through FSDP2's bf16 all-gather policy (methods/precision.py), sharded reference,
#      full-state gather);
#   3. rectifier step time and peak memory on a random ~1B Llama (no download) for none/gru/pcgrad/sago
#      next to the memory plan (benchmarks/bench_memory.py --device cuda; the plan counts autocast's
#      bf16 weight casts), then the same for bf16 master weights (master_dtype bfloat16: GRU's and
#      SAGO-WMDP's regime) for none/pcgrad; each step within +-10% of the plan is the target;
#   4. the evaluation harness throughput (benchmarks/bench_eval.py);
#   5. the generation engines, transformers vs vLLM (benchmarks/generation_backends_gpu.py): tokens/s,
#      the sample check and identical outputs on the tiny Llama, a random ~1B Llama and, when
#      GEN_CHECK_MODEL names a local HF folder, that real model (vLLM row says why when not installed).
# Figures go to benchmarks/results/ (and $OUT when set). Usage:
#   benchmarks/gpu_check.sh              on a GPU machine
#   benchmarks/gpu_check.sh --cpu-smoke  the same steps with tiny sizes on CPU (validates the script)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
fi
BIN="$(dirname "$(command -v "$PY")")"
export PATH="$BIN:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SMOKE=0; [ "${1:-}" = "--cpu-smoke" ] && SMOKE=1
RESULTS=benchmarks/results; mkdir -p "$RESULTS"
LOG="$RESULTS/gpu_check$([ $SMOKE = 1 ] && echo -smoke).log"; : > "$LOG"
status=0
step() {  # step NAME SECONDS CMD...: run with a time limit, log, keep going on failure
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s)" | tee -a "$LOG"
  local start=$SECONDS
  if timeout "$limit" "$@" 2>&1 | tee -a "$LOG"; then echo "=== $name: ok in $((SECONDS-start)) s" | tee -a "$LOG"
  else echo "=== $name: FAILED (exit ${PIPESTATUS[0]}) after $((SECONDS-start)) s" | tee -a "$LOG"; status=1; fi
}

if [ $SMOKE = 0 ]; then
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))" | tee -a "$LOG"
  step "cuda tests" 75 "$PY" -m pytest -q -m gpu tests/methods tests/methods/test_collectives_device.py
  step "fsdp2 via accelerate launch" 120 "$BIN/accelerate" launch --config_file config/accelerate/fsdp.yaml \
       --num_processes 1 benchmarks/fsdp_check.py
  step "rectifier bench 1B" 150 "$PY" benchmarks/bench_memory.py --device cuda --hidden 2048 --layers 16 \
       --intermediate 5632 --heads 16 --vocab 32000 --batch-size 4 --length 512 --steps 6 \
       --compute-dtype bfloat16 --tag cuda-1b
  step "bf16-master bench 1B" 90 "$PY" benchmarks/bench_memory.py --device cuda --hidden 2048 --layers 16 \
       --intermediate 5632 --heads 16 --vocab 32000 --batch-size 4 --length 512 --steps 6 \
       --compute-dtype bfloat16 --master-dtype bfloat16 --rectifiers none pcgrad --tag cuda-1b-bf16-master
  step "eval throughput" 75 "$PY" benchmarks/bench_eval.py
  step "generation backends" 60 "$PY" benchmarks/generation_backends_gpu.py --prompts 64
else
  step "cuda tests (skip on CPU)" 60 "$PY" -m pytest -q -m gpu tests/methods/test_cuda.py
  step "fsdp check, one CPU process" 120 nice -n 10 "$PY" benchmarks/fsdp_check.py --tiny
  step "rectifier bench tiny" 120 nice -n 10 "$PY" benchmarks/bench_memory.py --hidden 128 --layers 2 \
       --intermediate 256 --heads 4 --vocab 512 --tag cpu-smoke
  step "bf16-master bench tiny" 120 nice -n 10 "$PY" benchmarks/bench_memory.py --hidden 128 --layers 2 \
       --intermediate 256 --heads 4 --vocab 512 --compute-dtype bfloat16 --master-dtype bfloat16 \
       --rectifiers none pcgrad --tag cpu-smoke-bf16-master
  step "generation backends tiny" 60 nice -n 10 "$PY" benchmarks/generation_backends_gpu.py --cpu-smoke
fi
[ -n "${OUT:-}" ] && mkdir -p "$OUT" && cp "$LOG" "$RESULTS"/memory-*.* "$RESULTS"/fsdp_check*.json "$RESULTS"/generation_backends*.json "$RESULTS"/eval-*.json "$OUT"/ 2>/dev/null || true
echo "gpu_check: $([ $status = 0 ] && echo all steps ok || echo some steps FAILED) (log: $LOG)"
exit $status
