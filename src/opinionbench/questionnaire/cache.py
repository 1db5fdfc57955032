"""Content-addressed cache of LLM requests and replies (JSON files under `data/cache/llm/`).

The key is the sha256 of everything that determines the answer (model, messages, JSON schema,
temperature, token limit), so a changed prompt or schema can never reuse a stale reply, and a
committed cache lets `dvc repro` replay the `openai` backend with no endpoint. Entries hold no
endpoint URL and no API key.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opinionbench.io import atomic_path


def request_key(request: dict[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class LLMCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None  # a damaged entry is a miss, recomputed and rewritten

    def put(self, key: str, request: dict[str, Any], reply: str, meta: dict[str, Any] | None = None) -> Path:
        path = self.path(key)
        entry = {
            "key": key,
            "request": request,
            "reply": reply,
            "meta": meta or {},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        tmp = atomic_path(path)
        try:
            tmp.write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path
