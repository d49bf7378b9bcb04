# Entry points. Each target sets up .venv itself, so a fresh clone needs only `make demo` / `make test`.
#   make demo    the embedded default grid (tofu-tiny, 16 runs) end to end on this machine
#   make test    the test suite
#   make bench   speed / memory benchmarks (figures under benchmarks/results/)
#   make findings  config/findings.yaml (~30 min on 2 cores), then docs/findings.md + .html
#   make lock    re-resolve requirements.lock (exact versions) from pyproject.toml + lock.in
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

.PHONY: venv lock demo demo-run dry-run test bench lint clean-results findings

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

# Re-running does nothing once every result exists; a killed run resumes where it stopped.
# A hard-killed Snakemake leaves its directory lock behind; `make demo` holds a kernel file lock
# (flock) while it runs, so when it can take that lock no other `make demo` is alive and a stale
# Snakemake lock is safe to remove.
demo: venv
	@mkdir -p .snakemake
	@if command -v flock >/dev/null 2>&1; then \
	  flock -n -E 75 .snakemake/make-demo.lock $(MAKE) --no-print-directory demo-run UNLOCK=1; status=$$?; \
	  if [ $$status -eq 75 ]; then echo "make demo: another 'make demo' is running here" >&2; fi; \
	  exit $$status; \
	else $(MAKE) --no-print-directory demo-run; fi

demo-run:
	@if [ -n "$(UNLOCK)" ]; then $(SNAKEMAKE) --unlock >/dev/null 2>&1 || true; fi
	$(SNAKEMAKE) --cores $(CORES) $(SNAKEMAKE_ARGS)

dry-run: venv
	$(SNAKEMAKE) -n --cores $(CORES) $(SNAKEMAKE_ARGS)

lint: venv
	$(SNAKEMAKE) --lint

# pytest exits 5 when it collects no tests: that is a broken checkout, not a pass.
test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) benchmarks/run_all.py

# Do the seed papers' claims replicate on the tiny twins? Not part of CI (3 seeds x all tiny grids).
findings: venv
	$(SNAKEMAKE) --cores $(CORES) --configfile config/findings.yaml $(SNAKEMAKE_ARGS)
	PATH="$(abspath $(VENV))/bin:$$PATH" ubench report --configfile config/findings.yaml --out docs --stem findings

clean-results:
	rm -rf results work logs site .snakemake
