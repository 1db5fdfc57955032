"""The inference runner: questions × cells → predictions, in chunks, resumable, with progress.

Every cell (qkey, attribute, group) gets a request hash over everything that determines its
answer (model id + revision, the backend's `request_key` — endpoint, request fields —, method,
method settings, the exact prompts). Finished chunks are
written at once as parquet parts under `parts_dir`, keyed by those hashes; a run that was
killed, or rerun after adding groups or questions, loads the parts and computes only cells
whose hash is not there yet. The final table is then assembled in cell order and written
atomically, so it equals an uninterrupted run's.

A failed request is never served as a result: a rerun computes the cell again, until it has been
tried `max_attempts` times (params `infer.max_attempts`), so a fixed endpoint or a passing outage
heals on the next run, and an endpoint that stays down stops costing time. (A reply that could not
be parsed is the model's answer to that exact request: recorded as failed and kept.) What the table
cost (seconds, tokens) goes to `cost.json` beside its parts (inference/cost.py), not into the
table: the table stays byte-identical when its cells are.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextvars import copy_context
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from opinionbench.elicit import methods, settings_classes
from opinionbench.elicit.base import Item, MethodSettings, Result, failed
from opinionbench.environment import environment_tags
from opinionbench.inference.cells import Cell
from opinionbench.inference.cost import write_cost
from opinionbench.inference.predictions import write_predictions
from opinionbench.io import write_atomic
from opinionbench.models.base import Backend, metered
from opinionbench.prompting import QuestionError, check_options
from opinionbench.steering import steer
from opinionbench.steering.base import SteeringData
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
    retried: int = 0  # failed cells of an earlier run computed again
    exhausted: int = 0  # failed requests not tried again: tried `max_attempts` times already
    errors: Counter[str] = field(default_factory=Counter)  # error -> failed cells, in cell order of first appearance

    @staticmethod
    def total(summaries: Sequence[RunSummary]) -> RunSummary:
        """Several tables' summaries as one (counts and errors added up; `path`: the first's folder)."""
        errors: Counter[str] = Counter()
        for s in summaries:
            errors.update(s.errors)
        return RunSummary(sum(s.cells for s in summaries), sum(s.computed for s in summaries),
                          sum(s.reused for s in summaries), sum(s.failed for s in summaries),
                          summaries[0].path.parent if summaries else Path("."),
                          sum(s.retried for s in summaries), sum(s.exhausted for s in summaries), errors)

    def failure_line(self) -> str:
        """`6 of 6 cells failed: <the first error>` (+ how many other errors in how many cells);
        '' when none failed."""
        if not self.failed:
            return ""
        errors = list(self.errors.items()) or [("no error recorded", self.failed)]
        line = f"{self.failed} of {self.cells} cells failed: {errors[0][0]}"
        if rest := errors[1:]:
            line += f" (+{len(rest)} other error{'s' if len(rest) > 1 else ''} in {sum(n for _, n in rest)} cells)"
        return line


class InferenceRun:
    """One (dataset, model, method, steering) predictions table."""

    def __init__(self, backend: Backend, method: str, steering: str, questions: pd.DataFrame,
                 steering_data: SteeringData, settings: MethodSettings, *, dataset: str,
                 out_path: Path, parts_dir: Path, chunk_size: int = 16, max_attempts: int = 3,
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
        self.max_attempts = max_attempts
        self.knobs = dict(knobs or {})  # the run's other settings (steering, sample), recorded with the predictions
        self._settings_key = settings.request_key(method, settings_classes())  # part of every request hash

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
        fields = self.backend.request_key()
        if fields:  # appended only when a backend has some, so the hashes of those without stay as they were
            key.append(fields)
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]

    def template_hash(self, item: Item) -> str:
        return templates_hash(*item.context.templates, *self.method.templates)  # cached: per row, cheap

    # -- the run ----------------------------------------------------------------------------
    def _load_parts(self) -> dict[str, dict]:
        """Every cell computed so far, by request hash. A cell found in several parts (computed
        again after failing) keeps its answer if any part has one, else its most-tried failure."""
        done: dict[str, dict] = {}
        for part in sorted(self.parts_dir.glob("part-*.parquet")):
            for row in pd.read_parquet(part).to_dict("records"):
                row["attempts"] = _attempts(row.get("attempts"))
                old = done.get(row["request_hash"])
                if old is None or (old["failed"] and (not row["failed"] or row["attempts"] > old["attempts"])):
                    done[row["request_hash"]] = row
        return done

    def _to_compute(self, done: Mapping[str, dict], digest: str) -> bool:
        """Not computed yet, or a request that got no reply (endpoint down, timeout, HTTP error)
        tried fewer than `max_attempts` times. A reply that could not be read is the model's
        answer to that exact request, recorded as failed and kept: asking again gets the same."""
        row = done.get(digest)
        if row is None:
            return True
        return bool(row["failed"]) and _missing(row.get("raw_reply")) and row["attempts"] < self.max_attempts

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
        todo = [k for k, h in enumerate(hashes) if self._to_compute(done, h)]
        earlier = {hashes[k]: done[hashes[k]] for k in todo if hashes[k] in done}  # failed rows tried again
        reused = len(items) - len(todo)
        bar = tqdm(total=len(items), initial=reused, unit="question", disable=not progress,
                   desc=f"{self.backend.model_id.split('/')[-1]} {self.method_name}/{self.steering}")
        computed = 0
        chunks = [todo[start:start + self.chunk_size] for start in range(0, len(todo), self.chunk_size)]
        with ThreadPoolExecutor(max_workers=chunks_in_flight(self.backend.parallel_requests, self.chunk_size)) as pool:
            pending = [pool.submit(copy_context().run, self._compute_chunk, chunk, items, hashes, earlier)
                       for chunk in chunks]
            for future in as_completed(pending):
                rows = future.result()
                done.update({r["request_hash"]: r for r in rows})
                computed += len(rows)
                bar.update(len(rows))
        bar.close()
        extra = ["request_hash", "seconds", "tokens", "attempts"]
        frame = pd.DataFrame([done[h] for h in hashes], columns=[*PREDICTION_COLUMNS, *extra])
        seconds = float(pd.to_numeric(frame["seconds"], errors="coerce").fillna(0.0).sum())
        tokens = int(round(float(pd.to_numeric(frame["tokens"], errors="coerce").fillna(0.0).sum())))
        errors = Counter(str(e) for e in frame.loc[frame["failed"].astype(bool), "error"]) if len(frame) else Counter()
        computed_now = {hashes[k] for k in todo}
        exhausted = sum(1 for h in hashes if h not in computed_now and done[h]["failed"]
                        and _missing(done[h].get("raw_reply")))
        frame = frame.drop(columns=extra)
        if frame.empty:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in PREDICTION_COLUMNS})
        frame["out_of_option_mass"] = frame["out_of_option_mass"].map(
            lambda v: math.nan if v is None else float(v)) if len(frame) else frame["out_of_option_mass"]
        failures = int(frame["failed"].sum()) if len(frame) else 0
        write_predictions(frame, self.out_path, self.metadata())
        write_cost(self.parts_dir, cells=len(items), failures=failures, seconds=seconds, tokens=tokens)
        return RunSummary(len(items), computed, reused, failures, self.out_path, retried=len(earlier),
                          exhausted=exhausted, errors=errors)

    def _compute_chunk(self, chunk: list[int], items: list[Item], hashes: list[str],
                       earlier: Mapping[str, dict]) -> list[dict]:
        """One chunk's rows, written as a part file: its cost metered on its own (chunks may run
        concurrently), each cell getting its share so costs add up across resumptions (and over
        the attempts of a cell that failed before: `earlier`)."""
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
            before = earlier.get(row["request_hash"], {})
            row["seconds"] = seconds + _number(before.get("seconds"))
            row["tokens"] = tokens[0] / max(len(rows), 1) + _number(before.get("tokens"))
            row["attempts"] = _attempts(before.get("attempts")) + 1 if before else 1
        attempt = max(r["attempts"] for r in rows)  # a retry's part never overwrites a first attempt's
        name = f"part-{hashes[chunk[0]][:16]}-{len(chunk)}" + (f"-try{attempt}" if attempt > 1 else "")
        _write_part(rows, self.parts_dir / f"{name}.parquet")
        return rows

    def metadata(self) -> dict:
        """Every knob that made these predictions: nothing that differs from run to run (what the
        run cost is `cost.json`, `write_cost`), so equal cells give a byte-identical file. The
        locked environment (`env.lock_sha256`, `env.torch`, ...) is recorded too: the same commit
        gives the same numbers only in the same environment."""
        return {"backend": type(self.backend).__name__, "model_id": self.backend.model_id,
                "model_revision": self.backend.revision, "method": self.method_name, "steering": self.steering,
                **self.settings.recorded(self.method_name, self.method.settings), **self.knobs,
                **environment_tags()}


def _write_part(rows: list[dict], path: Path) -> None:
    """A chunk's rows as a parquet part, straight from the rows with pyarrow (written atomically).

    Why not `pd.DataFrame(rows).to_parquet`: for a chunk of 16 rows the DataFrame round trip cost
    1.7 ms against 0.65 ms, CPU a run against a fast server spends on every chunk; `_load_parts`
    reads parts of either kind to the same rows."""
    write_atomic(path, lambda tmp: pq.write_table(pa.Table.from_pylist(rows), tmp))


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(number) else number


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _attempts(value: Any) -> int:
    """How often a part row's cell was tried (rows written before attempts were counted: once)."""
    return max(1, int(_number(value)))
