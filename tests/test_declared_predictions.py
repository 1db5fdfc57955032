"""Which predictions params declare: a file an earlier experiment left behind (a model no longer in
`infer.run`) is named as stale and left out, never validated or scored as if it were configured."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opinionbench.inference.declared import declared_tables, only_declared, split_predictions


def _touch(root: Path, *parts: str) -> Path:
    path = root.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_the_declared_tables_are_the_matrix_and_the_baselines():
    tables = declared_tables("d", ["m"], ["logprobs", "verbalized"], ["none", "persona"], ["uniform"])
    assert tables == {("d", "m", "logprobs", "none"), ("d", "m", "logprobs", "persona"), ("d", "m", "verbalized", "none"),
                      ("d", "m", "verbalized", "persona"), ("d", "uniform", "baseline", "none")}
    assert ("d", "x", "y", "z") in declared_tables("d", [], [], [], [], extra=[("d", "x", "y", "z")])


def test_an_orphaned_file_is_stale_and_a_declared_one_not_yet_made_is_missing(tmp_path):
    kept = _touch(tmp_path, "d", "m", "logprobs", "none.parquet")
    orphan = _touch(tmp_path, "d", "dead", "logprobs", "none.parquet")
    other_dataset = _touch(tmp_path, "nytimes", "m", "logprobs", "none.parquet")
    _touch(tmp_path, "d", "m", "logprobs", "notes.txt")  # not a predictions file: not counted
    split = split_predictions(tmp_path, declared_tables("d", ["m"], ["logprobs"], ["none", "persona"], []))
    assert split.declared == [kept]
    assert split.stale == [orphan, other_dataset]
    assert split.missing == [tmp_path / "d" / "m" / "logprobs" / "persona.parquet"]
    stale, missing = split.notes()
    assert stale.startswith("2 predictions file(s) not declared by params") and str(orphan) in stale
    assert "declared predictions file(s) not found" in missing and "persona.parquet" in missing


@dataclass
class Found:
    path: Path


def test_only_declared_keeps_the_discovered_files_params_declare(tmp_path):
    files = [Found(_touch(tmp_path, "d", name, "logprobs", "none.parquet")) for name in ("m", "dead")]
    kept, split = only_declared(files, tmp_path, declared_tables("d", ["m"], ["logprobs"], ["none"], []))
    assert kept == files[:1] and split.stale == [files[1].path]
    assert split_predictions(tmp_path / "absent", set()).declared == []
