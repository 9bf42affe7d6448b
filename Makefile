# frugal: `make train` runs the default budgeted job, `make test` the test suite.
# Both set up .venv on first use (torch's CPU wheel first, then the project) and are quick
# no-ops afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup train test test-slow lint format report benchmarks studies study-tables clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: a plain `torch` requirement would pull several GB of CUDA wheels
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e '.[dev,sweep]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install (done by every target that needs it)

train: $(STAMP)  ## the default job: MNIST-1D, the paper's CNN, budgets measured and reported
	$(BIN)/frugal-train $(ARGS)

test: $(STAMP)  ## the test suite (tiny CPU configs; slow tests excluded)
	$(BIN)/python -m pytest -q $(ARGS)

test-slow: $(STAMP)  ## only the slow tests
	$(BIN)/python -m pytest -q -m slow $(ARGS)

lint: $(STAMP)  ## ruff check, format check, and the import layers (pyproject's importlinter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)  ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

report: $(STAMP)  ## frugal-report over DIR (a run or multirun directory), into OUT (default: report/)
	@test -n "$(DIR)" || (echo "usage: make report DIR=outputs/train/multiruns/<date> [OUT=report]" >&2; exit 2)
	$(BIN)/frugal-report $(DIR) -o $(or $(OUT),report)

benchmarks: $(STAMP)  ## the measurements quoted in README (several minutes; run on a quiet machine)
	$(BIN)/python benchmarks/train_overhead.py --pairs 3
	$(BIN)/python benchmarks/energy_overhead.py --pairs 5
	$(BIN)/python benchmarks/architectures.py
	$(BIN)/python benchmarks/enforcement_overhead.py --pairs 3
	$(BIN)/python benchmarks/budget_precision.py --n 10 --energy-range 40 400

# The studies in experiments/: each run.sh writes only to outputs/experiments/<study>/; the
# committed tables and plots change only here. STUDY=<name> picks one.
STUDIES := $(patsubst experiments/%/run.sh,%,$(wildcard experiments/*/run.sh))
STUDY ?= $(STUDIES)

studies: $(STAMP)  ## rerun the studies (STUDY=name for one; all: ~50 min) and refresh their committed tables and plots
	for study in $(STUDY); do bash experiments/$$study/run.sh && bash experiments/publish.sh $$study || exit 1; done

study-tables:  ## refresh the committed tables and plots from the studies' last outputs, without rerunning
	for study in $(STUDY); do bash experiments/publish.sh $$study || exit 1; done

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs multirun report .pytest_cache .ruff_cache
