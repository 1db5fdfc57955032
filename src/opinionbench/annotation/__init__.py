"""Manual verification in Label Studio: the review queue as annotation tasks, reviewers' answers
back into `data/reviews/corrections.yaml`.

Label Studio runs beside the project in its own virtual environment (`make label-studio`; its
dependency pins clash with ours), so this package talks to it over HTTP only: `tasks` turns the
queue into tasks and a labeling config, `client` is the API, `pull` turns submitted annotations
into reviewed-correction entries without losing or overwriting any. The API token is read from
the environment variable the params name, and never written anywhere.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from opinionbench.errors import OpinionBenchError
from opinionbench.io import DataPath


class AnnotationError(OpinionBenchError):
    """Label Studio cannot be reached or used, or an annotation cannot become a correction."""


class ReviewParams(BaseModel):
    """params.yaml `review:`: where the Label Studio server is and where the export goes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field("http://127.0.0.1:8089", description="Label Studio server (`make label-studio-server`)")
    api_token_env: str = Field("LABEL_STUDIO_API_KEY", description="env variable holding the API token (never stored)")
    project: str = Field("opinionbench review", description="Label Studio project title (found or created by push)")
    export_dir: DataPath = Field(Path("data/reviews/export"), description="tasks.json + labeling config (git-ignored)")
    timeout: float = Field(30.0, gt=0, description="seconds per HTTP request")
