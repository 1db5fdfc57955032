"""Compare like with like: the leaderboard ranks entries on the cells every ranked entry answered.

Why: entries answer different cells — a model run on a sample of questions, the baselines on
all of them, a held-out calibrated run on half, a steered run on the groups it was steered to,
an imported run on the questions its paper used. Ranking their own means side by side compares
different questions (the real build once ranked SmolLM2 on 1,649 questions against baselines on
12,467). So, per scope (the groups' rows and the public's rows), the *same cells* are the
(question, attribute, group) cells that every ranked entry with rows in that scope scored; each
entry is also scored on them (`<metric>_same` columns, beside its own full-set `<metric>`), the
leaderboard says how many questions and cells they are, and `rank` orders the ranked entries by
them. Ranked entries are models and baselines; oracles (baselines that read the answer), runs
flagged as not a result (a degenerate temperature) and human references are listed, not ranked.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from opinionbench.scoring import registry as reg
from opinionbench.tables import OVERALL

KEY = ["qkey", "attribute", "group"]
RANKED_KINDS = ("model", "baseline")
SCOPES = ("groups", "overall")
# Block order below the ranked entries: what is shown for comparison but never ranked.
RANK_ORDER = {"ranked": 0, "oracle": 1, "unranked": 2, "reference": 3}


def same_cell_specs() -> list[reg.MetricSpec]:
    """The leaderboard metrics recomputed on the same cells: those with an interval (the primary ones)."""
    return [s for s in reg.board_metrics() if s.interval]


def SAME_CELL_COLUMNS() -> list[str]:  # noqa: N802 - a column list, computed from the registry
    counts = [c for scope in SCOPES for c in (f"same_questions_{scope}", f"same_cells_{scope}")]
    return ["rank", *counts, *[f"{s.name}_same" for s in same_cell_specs()]]


def _scope(scored: pd.DataFrame, scope: str) -> pd.DataFrame:
    overall = scored["attribute"] == OVERALL
    return scored[overall] if scope == "overall" else scored[~overall]


def same_cell_scores(scored: dict[str, pd.DataFrame], ranked: set[str], boot: dict) -> dict[str, dict]:
    """entry → its `SAME_CELL_COLUMNS` values (except `rank`), every entry of `scored` scored on
    the cells all `ranked` entries answered (point estimates; intervals are the full-set columns')."""
    out: dict[str, dict] = {label: {} for label in scored}
    for scope in SCOPES:
        parts = {label: _scope(frame, scope) for label, frame in scored.items()}
        sets = [set(parts[label][KEY].itertuples(index=False, name=None)) for label in sorted(ranked)
                if label in parts and len(parts[label])]
        common = set.intersection(*sets) if sets else set()
        cells = pd.DataFrame(sorted(common), columns=KEY)
        n_questions = int(cells["qkey"].nunique())
        specs = [replace(s, interval=False) for s in same_cell_specs() if s.rows == scope]
        for label, part in parts.items():
            rows = part.merge(cells, on=KEY, how="inner") if len(cells) else part.iloc[:0]
            values = out[label]
            values[f"same_questions_{scope}"], values[f"same_cells_{scope}"] = n_questions, len(cells)
            for spec in specs:
                values[f"{spec.name}_same"] = reg.summarise_rows(spec, rows, boot)[spec.name] if len(rows) else np.nan
    return out


def rank_column(frame: pd.DataFrame, ranked: pd.Series) -> tuple[str | None, bool]:
    """(the same-cell column the ranking reads, higher is better): representativeness to the
    groups, else to the public, else TV — the first that some ranked entry has."""
    for name in ("rep_groups", "rep_overall", "simbench_groups", "tv_groups", "simbench_overall", "tv_overall"):
        column = f"{name}_same"
        if column in frame and frame.loc[ranked, column].notna().any():
            return column, reg.metric_specs.get(name).higher_is_better
    return None, True


def ranked_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard in its order, with `rank` (1 = best on the same cells) for ranked entries."""
    frame = frame.copy()
    flagged = frame["flag"].notna() & frame["flag"].astype(str).ne("")
    ranked = frame["kind"].isin(RANKED_KINDS) & ~flagged
    block = np.where(ranked, "ranked", np.where(frame["kind"].isin(["oracle", "reference"]), frame["kind"], "unranked"))
    own = frame["rep_groups"].fillna(frame["rep_overall"]).fillna(-frame["tv_groups"])
    column, higher = rank_column(frame, ranked)
    score = frame[column] if column else pd.Series(np.nan, index=frame.index)
    score = (score if higher else -score).where(ranked)
    frame["rank"] = score.rank(ascending=False, method="min").where(score.notna())
    frame["_block"] = pd.Series(block, index=frame.index).map(RANK_ORDER)
    frame["_score"] = score.fillna(-np.inf).where(ranked, own)
    frame["_own"] = own
    frame = frame.sort_values(["_block", "_score", "_own", "entry"], ascending=[True, False, False, True],
                              kind="stable", na_position="last")
    return frame.drop(columns=["_block", "_score", "_own"]).reset_index(drop=True)
