# Two set-up commands for a fresh machine: `make demo` and `make test`. Both create .venv when missing,
# install torch==$(TORCH_VERSION) first (a CPU build that lies on this machine's disk), then the package with
# a constraints file that pins that torch, so pip can never pull another (CUDA) torch.
# DGPO_SYSTEM_TORCH=1 skips the torch install and pins the torch already present instead (GPU machines).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
EXTRAS := dev,plot,eval,trl
STAMP := $(VENV)/.dgpo-installed

# Offline by design: nothing in the tests or the demo may reach a hub.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
# A fixed thread count keeps timings and float reductions repeatable on the 2-core machines.
DGPO_TORCH_THREADS ?= 2
export DGPO_TORCH_THREADS
export OMP_NUM_THREADS := $(DGPO_TORCH_THREADS)
export MKL_NUM_THREADS := $(DGPO_TORCH_THREADS)
# Hypothesis profile with no deadline (registered in tests/conftest.py): two loaded cores are slow and uneven.
export HYPOTHESIS_PROFILE := dgpo

.PHONY: help install demo test lint format bench clean

help:
	@echo "make demo   - set up .venv if needed and run the main job: dgpo train (embedded default, runs/dgpo-tiny)"
	@echo "make test   - set up .venv if needed and run the test suite"
	@echo "make lint   - ruff check + ruff format --check"
	@echo "make bench  - benchmarks (ratios against a baseline measured in the same run)"

# verl caps transformers < 5.11, so the verl plugin is tested in its own environment beside the main one.
VERL_VENV ?= .venv-verl
VERL_STAMP := $(VERL_VENV)/.dgpo-installed
# uvicorn, fastapi (verl's worker module) and cachetools (its trainer module) are imported by verl's actor-update
# path but not installed by `pip install verl`; tests_verl/test_actor_update.py runs that path on CPU.
# TransferQueue (verl's "verl-core" extra) is what verl's default v1 trainer imports; tests_verl/test_cpu_e2e.py runs it.
VERL_PACKAGES := -e ".[verl]" "math-verify[antlr4_9_3]>=0.9,<0.10" "pytest>=8" uvicorn fastapi cachetools \
	"TransferQueue>=0.1.10,<0.2"
# DGPO_SKIP_VERL=1 skips that environment and its tests (e.g. a GPU machine without a registry).
DGPO_SKIP_VERL ?=

# $(call make-venv,DIR,PIP ARGUMENTS): create DIR if missing, torch first (or pin the system torch), then the rest.
define make-venv
	@test -x $(1)/bin/python || $(PYTHON) -m venv $(if $(filter 1,$(DGPO_SYSTEM_TORCH)),--system-site-packages) $(1)
	$(if $(filter 1,$(DGPO_SYSTEM_TORCH)),$(1)/bin/python -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(1)/constraints.txt,$(1)/bin/python -m pip install --quiet torch==$(TORCH_VERSION) && cp constraints.txt $(1)/constraints.txt)
	$(1)/bin/python -m pip install --quiet -c $(1)/constraints.txt $(2)
	@touch $(1)/.dgpo-installed
endef

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(call make-venv,$(VENV),-e ".[$(EXTRAS)]")

$(VERL_STAMP): pyproject.toml constraints.txt Makefile
	$(call make-venv,$(VERL_VENV),$(VERL_PACKAGES))

demo: $(STAMP)
	$(VENV)/bin/dgpo train --overwrite

test: $(STAMP) $(if $(filter 1,$(DGPO_SKIP_VERL)),,$(VERL_STAMP))
	$(PY) -m pytest -q
ifneq ($(DGPO_SKIP_VERL),1)
	$(VERL_VENV)/bin/python -m pytest -q -p no:cacheprovider tests_verl
endif

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(VERL_VENV) .pytest_cache build src/*.egg-info
