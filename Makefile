# Entry points. Each target sets up .venv itself, so a fresh clone needs only `make demo` / `make test`.
#   make demo    the embedded default grid (tofu-tiny, 16 runs) end to end on this machine
#   make test    the test suite
#   make bench   speed / memory benchmarks (figures under benchmarks/results/)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CORES  ?= 2
SNAKEMAKE_ARGS ?=

.PHONY: venv demo dry-run test bench lint clean-results

venv: $(STAMP)

# torch is pinned and installed first: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Re-running does nothing once every result exists; a killed run resumes where it stopped.
demo: venv
	$(VENV)/bin/snakemake --cores $(CORES) --workflow-profile profiles/default $(SNAKEMAKE_ARGS)

dry-run: venv
	$(VENV)/bin/snakemake -n --cores $(CORES) --workflow-profile profiles/default $(SNAKEMAKE_ARGS)

lint: venv
	$(VENV)/bin/snakemake --lint --workflow-profile profiles/default

# pytest exits 5 when it collects no tests: that is a broken checkout, not a pass.
test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) benchmarks/run_all.py

clean-results:
	rm -rf results work logs site .snakemake
