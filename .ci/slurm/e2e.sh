#!/usr/bin/env bash
# The SLURM profile end to end on a one-node Slurm (CI stage; root only):
#   1. start munged + slurmctld + slurmd on localhost (.ci/slurm/local_cluster.sh)
#   2. the pre-submission check refuses the shipped profiles/slurm on this small node (naming the
#      rule and its request) and passes the same profile capped to the node (workflows/slurm_profile.py)
#   3. runs .ci/slurm/grid.yaml (every rule kind) through the SLURM executor with the venv NOT on
#      PATH; scancels the first unlearn job (the profile's squeue status must see CANCELLED and
#      resubmit it), then Ctrl-C's Snakemake once an evaluation job runs (it must cancel its jobs
#      and stop)
#   4. reruns: the grid completes, the leaderboard exists, a second `snakemake -n` has nothing to do
#   5. on exit (trap): cancels this run's jobs still queued and stops the daemons step 1 started
#
#   bash .ci/slurm/e2e.sh [WORK_DIR]     (default: a fresh temporary folder, removed on success)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
VENV_BIN="$REPO/.venv/bin"
KEEP_WORK="${1:-}"
WORK="${1:-$(mktemp -d /tmp/ubench-slurm-e2e.XXXXXX)}"
GRID="$REPO/.ci/slurm/grid.yaml"
PROFILE="$WORK/profile"
START=$SECONDS

say() { echo "[slurm-e2e $(( SECONDS - START ))s] $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

our_jobs() {   # Slurm job ids whose working directory is this run's folder
  squeue -h -o "%i|%Z" 2>/dev/null | awk -F'|' -v dir="$WORK" '$2 == dir {print $1}'
}

cleanup() {
  local status=$?
  set +e
  if [ -n "${SNAKEMAKE_PID:-}" ] && kill -0 "$SNAKEMAKE_PID" 2>/dev/null; then
    for signal in INT TERM KILL; do
      kill -"$signal" "$SNAKEMAKE_PID" 2>/dev/null
      for _ in $(seq 20); do kill -0 "$SNAKEMAKE_PID" 2>/dev/null || break 2; sleep 1; done
    done
  fi
  local left; left="$(our_jobs | tr '\n' ' ')"
  if [ -n "${left// }" ]; then say "cancelling jobs left in the queue: $left"; scancel $left; fi
  if [ $status -ne 0 ]; then
    say "logs kept in $WORK"
    for f in "$WORK"/run*.log; do [ -f "$f" ] && { echo "--- tail of $f"; tail -40 "$f"; }; done
    find "$WORK/.snakemake/slurm_logs" -name '*.log' 2>/dev/null | head -5 | while read -r f; do echo "--- $f"; tail -20 "$f"; done
  fi
  bash "$REPO/.ci/slurm/local_cluster.sh" stop
  [ $status -eq 0 ] && [ -z "$KEEP_WORK" ] && rm -rf "$WORK"
  say "done (exit $status, $(( SECONDS - START )) s)"
  exit $status
}
trap cleanup EXIT

# A job's Snakemake runs `ubench` by name: PATH deliberately lacks the venv (the Snakefile adds it).
# PYTHONPATH: a worktree whose venv is installed from another checkout still runs its own code.
run_env=(env -i HOME="${HOME:-/root}" PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 OMP_NUM_THREADS=1 PYTHONPATH="$REPO")
snakemake_cmd=("${run_env[@]}" "$VENV_BIN/snakemake" --snakefile "$REPO/Snakefile" --directory "$WORK"
               --configfile "$GRID" --slurm-init-seconds-before-status-checks 5)

bash "$REPO/.ci/slurm/local_cluster.sh" start
say "cluster up"

# ---- 2. the pre-submission check, against the real sinfo ----------------------------------------
fit=("${run_env[@]}" "$VENV_BIN/python" -m workflows.slurm_fit -- --snakefile "$REPO/Snakefile"
     --directory "$WORK" --configfile "$GRID")
if (cd "$REPO" && "${fit[@]}" --workflow-profile "$REPO/profiles/slurm") >"$WORK/fit-shipped.log" 2>&1; then
  fail "the fit check accepted profiles/slurm's 16-CPU finetune on a $(nproc)-CPU node"
fi
grep -q "rule finetune .* asks 16 CPUs" "$WORK/fit-shipped.log" || { cat "$WORK/fit-shipped.log"; fail "the refusal does not name finetune's request"; }
say "fit check refuses the shipped profile on this node: $(grep -c '^error: rule' "$WORK/fit-shipped.log") rule(s) named"

partition="$(sinfo -h -o '%P' | sed -n 's/\*$//p' | head -1)"
(cd "$REPO" && "${run_env[@]}" "$VENV_BIN/python" -m workflows.slurm_profile --partition "$partition" \
   --max-threads 1 --max-mem-mb 2000 --max-runtime 30 --out "$PROFILE") >/dev/null
(cd "$REPO" && "${fit[@]}" --workflow-profile "$PROFILE") >"$WORK/fit-capped.log" 2>&1 \
  || { cat "$WORK/fit-capped.log"; fail "the fit check refused the capped profile"; }
say "fit check passes the profile capped to the node (partition $partition)"

# ---- 3. first run: scancel one job, then Ctrl-C --------------------------------------------------
# job control on: a background job of a non-interactive shell would otherwise ignore SIGINT (Ctrl-C)
set -m
"${snakemake_cmd[@]}" --workflow-profile "$PROFILE" >"$WORK/run1.log" 2>&1 &
SNAKEMAKE_PID=$!
set +m

wait_for_job() {   # rule-name regex, timeout s -> prints the first matching job id of this run
  local pattern=$1 limit=$2 t0=$SECONDS id
  while (( SECONDS - t0 < limit )); do
    kill -0 "$SNAKEMAKE_PID" 2>/dev/null || return 1
    id="$(squeue -h -o "%i|%Z|%k" 2>/dev/null | awk -F'|' -v dir="$WORK" -v re="^rule_($pattern)_wildcards" \
          '$2 == dir && $3 ~ re {print $1; exit}')"
    [ -n "$id" ] && { echo "$id"; return 0; }
    sleep 0.5
  done
  return 1
}

victim="$(wait_for_job 'unlearn' 600)" || fail "no unlearn job was ever queued (see run1.log)"
scancel "$victim"
say "scancel'ed unlearn job $victim"

running="$(wait_for_job 'evaluate_run|evaluate_run_trajectory' 600)" || fail "no evaluation job was ever queued (see run1.log)"
kill -INT "$SNAKEMAKE_PID"
say "Ctrl-C to Snakemake while evaluation job $running is queued"
for _ in $(seq 120); do kill -0 "$SNAKEMAKE_PID" 2>/dev/null || break; sleep 1; done
kill -0 "$SNAKEMAKE_PID" 2>/dev/null && fail "Snakemake did not stop within 120 s of Ctrl-C"
wait "$SNAKEMAKE_PID" || true
SNAKEMAKE_PID=

grep -q "SLURM-job '$victim' failed, SLURM status is: 'CANCELLED'" "$WORK/run1.log" \
  || fail "the scancel'ed job $victim was not reported as CANCELLED (status command)"
for _ in $(seq 30); do [ -z "$(our_jobs)" ] && break; sleep 1; done
[ -z "$(our_jobs)" ] || fail "jobs still queued after Ctrl-C: $(our_jobs | tr '\n' ' ')"
# squeue keeps finished jobs for MinJobAge (300 s): the job queued at Ctrl-C must read CANCELLED
state="$(squeue -h -j "$running" --states=all -o %T 2>/dev/null || true)"
[ "$state" = CANCELLED ] || fail "evaluation job $running is '$state' after Ctrl-C, expected CANCELLED (Snakemake did not scancel it)"
say "the scancel'ed job was noticed; Ctrl-C cancelled the queued jobs (job $running: $state)"

# ---- 4. resume ---------------------------------------------------------------------------------
"${snakemake_cmd[@]}" --workflow-profile "$PROFILE" >"$WORK/run2.log" 2>&1 || fail "the resumed run failed"
say "resumed run finished"

[ -s "$WORK/site/leaderboard.csv" ] || fail "no leaderboard (site/leaderboard.csv)"
rows=$(( $(wc -l <"$WORK/site/leaderboard.csv") - 1 ))
[ "$rows" -ge 3 ] || fail "leaderboard has $rows rows, expected the 3 runs"
for method in graddiff+none graddiff+pcgrad graddiff+sago; do
  [ -s "$WORK/results/tofu-tiny/forget10/tiny-llama/$method/seed0/metrics.json" ] || fail "no metrics.json for $method"
done
for method in graddiff+pcgrad graddiff+sago; do
  [ -s "$WORK/results/tofu-tiny/forget10/tiny-llama/$method/seed0/trajectory.parquet" ] || fail "no trajectory for $method"
done
[ -d "$WORK/work/runs/tofu-tiny/forget10/tiny-llama/graddiff+sago/seed0/snapshots" ] || fail "kept snapshots missing"
[ ! -e "$WORK/work/runs/tofu-tiny/forget10/tiny-llama/graddiff+pcgrad/seed0/snapshots" ] || fail "temporary snapshots not deleted"
[ -s "$WORK/work/runs/tofu-tiny/forget10/tiny-llama/graddiff+none/seed0/attacks/quantize-int8/model/config.json" ] \
  || fail "the attacked model of a keep_model attack is missing"

"${snakemake_cmd[@]}" --workflow-profile "$PROFILE" -n >"$WORK/run3.log" 2>&1 || fail "the final dry run failed"
grep -q "Nothing to be done" "$WORK/run3.log" || { tail -30 "$WORK/run3.log"; fail "a second snakemake -n still has work to do"; }
say "OK: leaderboard with $rows rows, nothing left to do"
