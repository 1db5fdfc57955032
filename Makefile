# The two commands of a new user:  `make repro` (set up + run the pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export GX_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_TELEMETRY := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup repro test test-fast

setup:
	@bash scripts/setup.sh

repro: setup
	dvc repro

test: setup
	python -m pytest -q

test-fast: setup
	python -m pytest -q -m "not slow and not integration"
