"""Scoring: predictions against the human distributions, from one formula to the written report.

`metrics` holds the field's formulas (vectorised, no I/O); `registry` describes every metric
(formula, aggregation, direction, label), and every output takes its columns from it; `evaluation` joins one predictions
file with its dataset's truth and summarises it; `calibrate` fits and applies temperatures on
held-out questions; `leaderboard` puts every file and reference of a dataset together; `report`
writes what people read (CSV, Markdown, DVC metrics, figures), `html_report` the one page. The calibrate and evaluate stages
only read params, call these, and write what they return.
"""
