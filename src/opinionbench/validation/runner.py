"""Great Expectations runner: suites from `expectations/*.json`, frames from pandas, Data Docs HTML.

Why GX and not asserts: the suites are data a reviewer reads and diffs like code, every check
is reported the same way (counts and the failing rows' keys), and Data Docs gives an HTML
report to browse. GX is imported here only (it costs ~4 s), in an ephemeral, offline context.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from opinionbench.errors import OpinionBenchError
from opinionbench.io import read_structured

SAMPLE_ROWS = 3
DOCS_SITE = "opinionbench"
# Data Docs are a DVC output, hashed in dvc.lock: they must be the same bytes whenever the data and
# suites are. GX stamps each page with the time it ran or rendered (directory names, the logo's
# cache-buster, "run time" columns) and gives collapsible blocks random uuid4 ids: the runs get
# this fixed time, the rest is rewritten after rendering (`_same_every_run`).
DOCS_RUN_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
_STAMP = re.compile(r"\d{8}T\d{6}\.\d{6}Z|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class SuiteError(OpinionBenchError):
    """An expectation suite file cannot be used (missing, not JSON, unknown expectation)."""


@dataclass(frozen=True)
class Outcome:
    """One expectation's result, with the keys of a few failing rows."""

    suite: str
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int
    element_count: int
    why: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    observed: Any = None


@dataclass
class ValidationReport:
    outcomes: list[Outcome]
    docs_index: Path | None

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]


def load_suite(path: Path) -> dict[str, Any]:
    """The suite's JSON, checked for the shape this runner relies on; errors name the file."""
    if not Path(path).exists():
        raise SuiteError(f"{path}: expectation suite not found")
    data = read_structured(path, kind="json", error=SuiteError)
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list) or not data.get("name"):
        raise SuiteError(f"{path}: a suite needs a 'name' and a list of 'expectations'")
    meta = data.get("meta") or {}
    if not isinstance(meta.get("key_columns"), list):
        raise SuiteError(f"{path}: meta.key_columns (the columns that name a failing row) is missing")
    return data


def _plain(value: Any) -> Any:
    """numpy scalars → Python, NaN → None: sample rows go to JSON and to a terminal."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float):
        return round(value, 6)
    return value


@contextlib.contextmanager
def _quiet_gx():
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _exception(info: Any) -> dict[str, Any]:
    """GX reports an expectation that raised either flat or keyed by metric; return the first raised."""
    if not isinstance(info, dict):
        return {}
    if "raised_exception" in info:
        return info
    return next((v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")), {})


def _context(docs_dir: Path | None):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(Path(docs_dir).resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    return context


def _same_every_run(docs_dir: Path) -> None:
    """Rewrite the rendered pages so that equal results give equal bytes: every timestamp becomes
    the fixed run time, every random id the n-th id of its page (ids only link within a page)."""
    compact, iso = DOCS_RUN_TIME.strftime("%Y%m%dT%H%M%S.%fZ"), DOCS_RUN_TIME.strftime("%Y-%m-%d %H:%M:%S")
    for page in sorted(Path(docs_dir).rglob("*.html")):
        ids: dict[str, str] = {}
        text = _STAMP.sub(lambda m: iso if "-" in m.group(0) else compact, page.read_text())
        text = _UUID.sub(lambda m: ids.setdefault(m.group(0), f"00000000-0000-4000-8000-{len(ids):012d}"), text)
        page.write_text(text)


def run_suites(
    frames: dict[str, pd.DataFrame],
    suites_dir: Path,
    parameters: dict[str, Any],
    docs_dir: Path | None,
) -> ValidationReport:
    """Validate each frame with the suite of the same name; Data Docs (HTML) go to `docs_dir`."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.expectations.registry import get_expectation_impl

    if docs_dir is not None:
        shutil.rmtree(docs_dir, ignore_errors=True)  # no stale pages of an earlier run
        docs_dir.mkdir(parents=True, exist_ok=True)
    context = _context(docs_dir)
    source = context.data_sources.add_pandas("opinionbench")
    outcomes: list[Outcome] = []
    for name, frame in tqdm(frames.items(), desc="validate", unit="suite"):
        path = Path(suites_dir) / f"{name}.json"
        spec = load_suite(path)
        keys = [k for k in spec["meta"]["key_columns"] if k in frame.columns]
        for entry in spec["expectations"]:
            try:
                get_expectation_impl(str(entry.get("type")))
            except Exception:  # GX raises its own not-found error types
                raise SuiteError(f"{path}: not a Great Expectations expectation: {entry.get('type')!r}") from None
        try:
            with _quiet_gx():  # an invalid entry is reported below as one line, not as GX's logged traceback
                suite = context.suites.add(ExpectationSuite(**spec))
        except Exception as exc:  # GX raises several types for an unknown or malformed expectation
            raise SuiteError(f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        if len(suite.expectations) != len(spec["expectations"]):  # GX drops an unknown type with a log line only
            kept = {e.expectation_type for e in suite.expectations}
            dropped = sorted({str(e.get("type")) for e in spec["expectations"] if e.get("type") not in kept})
            raise SuiteError(f"{path}: not a Great Expectations expectation: {', '.join(dropped) or '(invalid entry)'}")
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        actions = [UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE])] if docs_dir is not None else []
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"{name}_checkpoint", validation_definitions=[definition], actions=actions,
            # SUMMARY: counts + the first failing rows' keys; COMPLETE would list every failing row (700k on real data)
            result_format={"result_format": "SUMMARY", "unexpected_index_column_names": keys},
        ))
        result = checkpoint.run(batch_parameters={"dataframe": frame.reset_index(drop=True)},
                                expectation_parameters=parameters,
                                run_id=RunIdentifier(run_name=name, run_time=DOCS_RUN_TIME))
        for suite_result in result.run_results.values():
            for item in suite_result.results:
                config = item.expectation_config
                res = item.result or {}
                column = config.kwargs.get("column") or ",".join(config.kwargs.get("column_list") or []) or None
                samples = [{k: _plain(v) for k, v in row.items()} if isinstance(row, dict) else {"row": _plain(row)}
                           for row in (res.get("partial_unexpected_index_list") or res.get("unexpected_index_list") or [])[:SAMPLE_ROWS]]
                info = _exception(item.exception_info)
                raised = bool(info.get("raised_exception"))
                why = (config.meta or {}).get("why", "")
                if raised:  # e.g. the suite names a column the frame lacks: a failed check, said plainly
                    message = str(info.get("exception_message") or "").splitlines()
                    why = f"could not be evaluated: {message[0] if message else 'unknown error'}"
                outcomes.append(Outcome(
                    suite=name,
                    expectation=config.type,
                    column=column,
                    success=bool(item.success) and not raised,
                    unexpected_count=int(res.get("unexpected_count") or 0),
                    element_count=int(res.get("element_count") or len(frame)),
                    why=why,
                    samples=samples,
                    observed=_plain(res.get("observed_value")),
                ))
    if docs_dir is not None:
        _same_every_run(docs_dir)
    index = (docs_dir / "index.html") if docs_dir is not None else None
    return ValidationReport(outcomes, index if index is not None and index.exists() else None)
