"""Secrets never reach MLflow: every value of a credential-like environment variable is `***`.

API keys reach the pipeline only through environment variables. Before anything is sent to
MLflow (params, tags, text and parquet artifacts), every value of an environment variable whose
name looks like a credential, or that params.yaml names as an `api_key_env`, is replaced by
`***`, so a key echoed into a reply or a path can never be stored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from opinionbench.io import InputFileError, read_structured

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CRED|AUTH)", re.IGNORECASE)
REDACTED = "***"
TEXT_SUFFIXES = {".csv", ".md", ".json", ".txt", ".yaml"}


def declared_secret_names(params_path: Path) -> list[str]:
    """Environment variable names that params.yaml declares as holding keys (`api_key_env` anywhere).

    A key may live in a variable with an innocent name (`MY_LLM_CREDS`); the params say which
    variables hold keys, so their values are redacted whatever the name looks like.
    """
    try:
        raw = read_structured(params_path, kind="yaml")
    except InputFileError:
        return []
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "api_key_env" and isinstance(value, str) and value:
                    names.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(raw)
    return sorted(names)


def secret_values(environ: Mapping[str, str] | None = None, names: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Values of credential-like environment variables, and of those `names` (longest first, so
    overlapping secrets redact fully). Values under 6 characters are too short to redact safely."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if (_SECRET_NAME.search(k) or k in names) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(value: Any, secrets: list[str] | None = None) -> str:
    text = str(value)
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    return text


def redacted_frame(frame: pd.DataFrame, secrets: list[str]) -> pd.DataFrame:
    """`frame` with secrets redacted in every string cell (a copy)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: redact(v, secrets) if isinstance(v, str) else v)
    return out


def scrubbed_copy(path: Path, folder: Path, secrets: list[str]) -> Path:
    """A copy of an artifact with secrets redacted (text and parquet string columns); binaries as is."""
    target = folder / path.name
    if path.suffix in TEXT_SUFFIXES:
        target.write_text(redact(path.read_text(errors="replace"), secrets))
    elif path.suffix == ".parquet":
        redacted_frame(pd.read_parquet(path), secrets).to_parquet(target, index=False)
    else:
        target.write_bytes(path.read_bytes())
    return target
