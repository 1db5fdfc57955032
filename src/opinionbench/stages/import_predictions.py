"""`import-predictions` stage: published runs → our predictions schema, and the paper's tables.

With `published.distributional_alignment: null` and no `published.sources` (the default)
nothing is imported: the report says so and the default pipeline never needs external data.
Each source is imported on its own (a broken one is reported on one line, the others are
written) into `published.out_dir/{predictions,calibrated}/<dataset>/<model>/<method>/<steering>.parquet`
(`calibrated/`: runs the source temperature-scaled itself) with `import_report.json` (files,
cells and failures by reason). The distributional-alignment release's tables are reproduced
into `published.paper_dir` and compared row by row with the published ones.
"""

from __future__ import annotations

import argparse
import shutil

from opinionbench.config import AuditParams, DatasetsParams, load
from opinionbench.errors import OpinionBenchError, one_line
from opinionbench.published import PublishedParams


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from opinionbench.io import write_json, write_text
    from opinionbench.published import import_predictions
    from opinionbench.published.common import DatasetCatalog, write_report, write_result
    from opinionbench.published.tables import write_paper_tables

    params = load(PublishedParams, args.params)
    datasets, audit = load(DatasetsParams, args.params), load(AuditParams, args.params)
    out = params.out_dir
    for stale in (out / "predictions", out / "calibrated", params.paper_dir):
        if stale.exists():
            shutil.rmtree(stale)
    out.mkdir(parents=True, exist_ok=True)
    params.paper_dir.mkdir(parents=True, exist_ok=True)
    catalog = DatasetCatalog(datasets.out_dir)
    reports, failed = [], {}
    release = None
    for source in params.all_sources():
        try:
            result = import_predictions(source.importer, source.path, catalog)
        except OpinionBenchError as exc:
            failed[f"{source.importer}:{source.path}"] = one_line(exc)
            print(f"not imported: {source.importer} {source.path}: {one_line(exc)}")
            continue
        written = write_result(result, out)
        report = result.report()
        reports.append(report)
        print(f"imported {source.path} ({source.importer}): {len(written)} runs, {report['cells']['imported']} of "
              f"{report['cells']['total']} cells; failed by reason: {report['cells']['failed_by_reason']}")
        if result.release_cells is not None and source.importer == "distributional-alignment":
            release = (source.path, result.release_cells)
    total = write_report(reports, out / "import_report.json")
    if failed:
        write_json({**total, "sources_failed": failed}, out / "import_report.json")
    if release is None:
        write_text("published.distributional_alignment is null: no paper table reproduced\n",
                   params.paper_dir / "README.md")
        print("published: nothing to reproduce" if not reports else "published: no distributional-alignment release")
        return 0 if not failed or reports else 2
    group_counts = audit.out_dir / "group_counts.parquet"
    audit_table = pd.read_parquet(group_counts) if group_counts.exists() else None
    summary = write_paper_tables(release[0], release[1], catalog, params, audit_table)
    print(f"paper tables -> {params.paper_dir}: {summary['rows_compared']} rows compared, "
          f"{summary['rows_matching']} within {summary['tolerance']}, {summary['rows_differing']} differ")
    return 0 if not failed or reports else 2
