"""Inference: from a dataset's questions to predictions tables (runner + predictions I/O)."""
