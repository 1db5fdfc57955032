"""MLflow lineage: which data, prompts and code made each leaderboard number.

Small modules, one job each (imported directly; this package imports nothing, so that config.py
can compose `TrackingParams` without loading MLflow):

- `settings`: `TrackingParams`, the `tracking:` section of params.yaml;
- `secrets`: credential values redacted from everything sent to MLflow;
- `store`: where the store lives (tracking URI, artifact folder, DVC temporary workspaces) and
  the lock that makes writers of one SQLite file take turns;
- `artifacts`: artifact locations relative to the SQLite store (an MLflow artifact-repository
  plug-in), so a moved checkout keeps its artifacts;
- `lineage`: git commit, `dvc.lock` hashes and md5 of the files a run read;
- `adapter`: the MLflow calls (experiments, parent/child runs, logged models, dataset inputs);
- `runs`: an evaluation (`scoring.leaderboard.DatasetEvaluation`) as runs, logged once each.
"""
