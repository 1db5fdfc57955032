"""The inference runner: questions × cells → predictions, in chunks, resumable, with progress.

Every cell (qkey, attribute, group) gets a request hash over everything that determines its
answer (model id + revision, method, method settings, the exact prompts). Finished chunks are
written at once as parquet parts under `parts_dir`, keyed by those hashes; a run that was
killed, or rerun after adding groups or questions, loads the parts and computes only cells
whose hash is not there yet. The final table is then assembled in cell order and written
atomically, so it equals an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextvars import copy_context
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from opinionbench.elicit import methods
from opinionbench.elicit.base import Item, MethodSettings, Result, failed
from opinionbench.inference.cells import Cell
from opinionbench.inference.predictions import write_predictions
from opinionbench.io import write_parquet
from opinionbench.models.base import Backend, metered
from opinionbench.prompting import QuestionError, check_options
from opinionbench.steering.base import SteeringData, steer
from opinionbench.steering.templates import templates_hash
from opinionbench.tables import PREDICTION_COLUMNS


def chunks_in_flight(parallel_requests: int, chunk_size: int) -> int:
    """How many chunks the runner computes at once.

    A local model (`parallel_requests` 1) takes one chunk after another. A server takes
    `parallel_requests` requests at once (openai backend: `concurrency`), bounded by the backend's
    one request pool that every chunk shares: enough chunks to fill that pool, plus one whose
    requests wait queued in it, so the server never idles while a finished chunk is written as a
    part file (each still written as soon as it is done, so a killed run resumes).
    """
    if parallel_requests <= 1:
        return 1
    return math.ceil(parallel_requests / max(1, chunk_size)) + 1


@dataclass
class RunSummary:
    cells: int
    computed: int
    reused: int
    failed: int
    path: Path


class InferenceRun:
    """One (dataset, model, method, steering) predictions table."""

    def __init__(self, backend: Backend, method: str, steering: str, questions: pd.DataFrame,
                 steering_data: SteeringData, settings: MethodSettings, *, dataset: str,
                 out_path: Path, parts_dir: Path, chunk_size: int = 16, retry_failed: bool = False,
                 knobs: Mapping[str, Any] | None = None) -> None:
        self.backend = backend
        self.method_name = method
        self.method = methods.get(method)
        self.steering = steering
        self.questions = questions.set_index("qkey", drop=False)
        # (wording, options) by qkey, read once: a pandas row lookup per cell cost more than the
        # cell's own request against a fast server
        self._asked = {str(q): (str(text), tuple(str(o) for o in options))
                       for q, text, options in zip(questions["qkey"], questions["question"], questions["options"])}
        self.data = steering_data
        self.settings = settings
        self.dataset = dataset
        self.out_path = Path(out_path)
        self.parts_dir = Path(parts_dir)
        self.chunk_size = chunk_size
        self.retry_failed = retry_failed
        self.knobs = dict(knobs or {})  # the run's other settings (steering, sample), recorded with the predictions
        self._settings_key = asdict(settings)  # part of every request hash

    # -- what a cell asks -------------------------------------------------------------------
    def item(self, cell: Cell) -> Item:
        qkey, attribute, group = cell
        question, options = self._asked[qkey]
        context = steer(self.steering, self.data, qkey, attribute, group)
        return Item(qkey, attribute, group, question, options, context)

    def request_hash(self, item: Item) -> str:
        try:
            check_options(item.qkey, item.options)
            prompts = [p.messages for p in self.method.prompts(item, self.settings)]
        except QuestionError as exc:  # not askable (e.g. > 26 options): hashed by what is wrong, recorded as failed
            prompts = [str(exc)]
        key = [self.backend.model_id, self.backend.revision, self.method_name, self._settings_key, prompts]
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]

    def template_hash(self, item: Item) -> str:
        return templates_hash(*item.context.templates, *self.method.templates)

    # -- the run ----------------------------------------------------------------------------
    def _load_parts(self) -> dict[str, dict]:
        done: dict[str, dict] = {}
        for part in sorted(self.parts_dir.glob("part-*.parquet")):
            for row in pd.read_parquet(part).to_dict("records"):
                if self.retry_failed and row["failed"]:
                    continue
                done[row["request_hash"]] = row
        return done

    def _row(self, item: Item, result: Result, digest: str, template_hash: str) -> dict:
        return {
            "qkey": item.qkey, "attribute": item.attribute, "group": item.group,
            "probs": [float(p) for p in result.probs], "out_of_option_mass": float(result.out_of_option_mass),
            "raw_reply": result.raw_reply, "failed": bool(result.failed), "error": result.error,
            "template_hash": template_hash, "model_id": self.backend.model_id,
            "model_revision": self.backend.revision, "method": self.method_name, "steering": self.steering,
            "dataset": self.dataset, "request_hash": digest,
        }

    def run(self, cells: Sequence[Cell], progress: bool = True) -> RunSummary:
        items = [self.item(c) for c in cells]
        hashes = [self.request_hash(i) for i in items]
        done = self._load_parts()
        todo = [k for k, h in enumerate(hashes) if h not in done]
        reused = len(items) - len(todo)
        bar = tqdm(total=len(items), initial=reused, unit="question", disable=not progress,
                   desc=f"{self.backend.model_id.split('/')[-1]} {self.method_name}/{self.steering}")
        computed = 0
        chunks = [todo[start:start + self.chunk_size] for start in range(0, len(todo), self.chunk_size)]
        with ThreadPoolExecutor(max_workers=chunks_in_flight(self.backend.parallel_requests, self.chunk_size)) as pool:
            pending = [pool.submit(copy_context().run, self._compute_chunk, chunk, items, hashes) for chunk in chunks]
            for future in as_completed(pending):
                rows = future.result()
                done.update({r["request_hash"]: r for r in rows})
                computed += len(rows)
                bar.update(len(rows))
        bar.close()
        frame = pd.DataFrame([done[h] for h in hashes], columns=[*PREDICTION_COLUMNS, "request_hash", "seconds", "tokens"])
        seconds = float(pd.to_numeric(frame["seconds"], errors="coerce").fillna(0.0).sum())
        tokens = int(round(float(pd.to_numeric(frame["tokens"], errors="coerce").fillna(0.0).sum())))
        frame = frame.drop(columns=["request_hash", "seconds", "tokens"])
        if frame.empty:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in PREDICTION_COLUMNS})
        frame["out_of_option_mass"] = frame["out_of_option_mass"].map(
            lambda v: math.nan if v is None else float(v)) if len(frame) else frame["out_of_option_mass"]
        failures = int(frame["failed"].sum()) if len(frame) else 0
        write_predictions(frame, self.out_path, self.metadata(len(items), failures, seconds, tokens))
        return RunSummary(len(items), computed, reused, failures, self.out_path)

    def _compute_chunk(self, chunk: list[int], items: list[Item], hashes: list[str]) -> list[dict]:
        """One chunk's rows, written as a part file: its cost metered on its own (chunks may run
        concurrently), each cell getting its share so costs add up across resumptions."""
        askable, rows = [], []
        for k in chunk:
            try:
                check_options(items[k].qkey, items[k].options)
                askable.append(k)
            except QuestionError as exc:
                rows.append(self._row(items[k], failed(str(exc)), hashes[k], self.template_hash(items[k])))
        started = time.perf_counter()
        with metered() as tokens:
            if askable:
                results = self.method.run(self.backend, [items[k] for k in askable], self.settings)
                rows += [self._row(items[k], r, hashes[k], self.template_hash(items[k])) for k, r in zip(askable, results)]
        seconds = (time.perf_counter() - started) / max(len(rows), 1)
        for row in rows:
            row["seconds"], row["tokens"] = seconds, tokens[0] / max(len(rows), 1)
        write_parquet(pd.DataFrame(rows), self.parts_dir / f"part-{hashes[chunk[0]][:16]}-{len(chunk)}.parquet")
        return rows

    def metadata(self, cells: int, failures: int, seconds: float, tokens: int) -> dict:
        """Every knob that made these predictions, and what they cost (compute seconds and tokens
        of all cells, summed over resumed executions)."""
        return {"backend": type(self.backend).__name__, "model_id": self.backend.model_id,
                "model_revision": self.backend.revision, "method": self.method_name, "steering": self.steering,
                **{f"method.{k}": v for k, v in asdict(self.settings).items()}, **self.knobs,
                "cells": cells, "failures": failures, "infer_seconds": round(seconds, 3), "infer_tokens": tokens}
