#!/usr/bin/env bash
# Label Studio for the manual review (`opinionbench review export|push|pull`), in its own virtual
# environment: its pins (Django 5.2, openai<2, pytz<2023, numpy<3, pyarrow<25) clash with ours, so
# it never shares .venv; opinionbench talks to it over HTTP only. Idempotent: reruns do nothing.
#   .venv-label-studio/            the server (git-ignored)
#   .venv-label-studio/template/   an empty, migrated data directory: tests copy it and start in
#                                  seconds instead of migrating a fresh SQLite database each time
#   .label-studio/                 your review server's own data (SQLite, uploads; git-ignored),
#                                  made by `make label-studio-server`
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.23.2  # must equal the label-studio pin of scripts/label-studio-requirements.txt
PINS=scripts/label-studio-requirements.txt
VENV=.venv-label-studio
stamp=$VENV/.opinionbench-label-studio
want="$VERSION $(sha256sum "$PINS" | cut -c1-16)"
grep -qx "label-studio==$VERSION" "$PINS" || { echo "setup_label_studio: $PINS does not pin label-studio==$VERSION" >&2; exit 1; }
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  PY=${PYTHON:-python3}
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # every dependency pinned (its own pins are ranges: a new sentry-sdk major once broke its start-up)
  "$VENV/bin/pip" install -q -r "$PINS"
  rm -rf "$VENV/template"
  mkdir -p "$VENV/template"
  # Django's migrations on an empty SQLite database, once (a minute or more); no user, no project.
  # (Every label-studio command migrates its data directory first; `version` does nothing else.)
  LABEL_STUDIO_BASE_DATA_DIR="$PWD/$VENV/template" "$VENV/bin/label-studio" --data-dir "$PWD/$VENV/template" \
    version > "$VENV/template.log" 2>&1 || { tail -20 "$VENV/template.log" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
echo "setup: ready ($VENV: label-studio $VERSION)"
