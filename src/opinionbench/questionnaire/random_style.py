"""The `random` style family: a seed draws every layout dimension independently, scan included.

Six hand-made styles are a training set: a reader fitted to them may fail on the next survey
house's layout. A random layout is drawn dimension by dimension (font and size; where the code
goes; option markers; percentage columns, their headers and side; how a battery is printed;
instructions and routing; running headers, footers, page numbers; one or two text columns;
page breaks inside a question; and the scan's skew, blur, speckle, JPEG quality and dpi), so
`benchmarks/ocr_accuracy.py` can score a reader on layouts nobody tuned it for and break the
score down by each dimension's value. The drawn dimensions travel in the PDF's keywords.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from opinionbench.questionnaire.styles import Style

# every dimension and its values; `draw_style` takes one value of each, independently
DIMENSIONS: dict[str, tuple] = {
    "font": ("Helvetica", "Times-Roman", "Courier"),
    "size": (9.0, 10.0, 11.0, 12.0),
    "code": ("own_line", "period", "bracketed", "bare", "inline", "after_number", "numbered", "absent"),
    "marker": ("none", "letter", "number", "bullet", "checkbox"),
    "percents": ("none", "one", "several"),
    "percent_header": ("date", "current_previous"),
    "percent_side": ("left", "right"),
    "battery": ("stem_items", "table", "full"),
    "instructions": ("yes", "no"),
    "running": ("header", "footer", "both", "none"),
    "page_numbers": ("yes", "no"),
    "columns": ("1", "2"),
    "split": ("yes", "no"),
    "skew": ("low", "high"),  # |angle| up to 0.7 degrees, or 0.7-2
    "blur": ("none", "light", "heavy"),
    "speckle": ("none", "some", "heavy"),
    "jpeg": ("high", "low"),  # quality 70-90 or 30-50
    "dpi": ("150", "200", "250", "300"),
}


@dataclass(frozen=True)
class ScanSettings:
    """How a page is degraded into a "scan" (`render.scan_pdf`)."""

    dpi: int = 200
    max_rotation: float = 0.6  # degrees; the angle is drawn uniformly within ±this
    min_rotation: float = 0.0
    blur: float = 0.6  # Gaussian radius in pixels
    noise: float = 12.0  # sensor noise, grey levels
    speckle: float = 0.0  # share of pixels flipped to black or white
    jpeg_quality: int = 60


def draw_dimensions(seed: int) -> dict[str, str]:
    rng = np.random.default_rng([seed, 21])
    return {name: str(values[int(rng.integers(len(values)))]) for name, values in DIMENSIONS.items()}


def draw_style(seed: int) -> tuple[Style, ScanSettings, dict[str, str]]:
    """The layout and scan of random layout `seed`, and its drawn dimensions (for the breakdown)."""
    d = draw_dimensions(seed)
    rng = np.random.default_rng([seed, 22])
    size = float(d["size"])
    columns = int(d["columns"])
    if columns == 2:
        size = min(size, 10.0)  # a narrow column in 12-point Courier holds too few words per line
    style = Style(
        "random", code=d["code"], marker=d["marker"], percent_side=d["percent_side"],
        trend_columns={"none": 0, "one": 1, "several": int(rng.integers(2, 4))}[d["percents"]],
        trend_header=d["percent_header"], battery=d["battery"], columns=columns, split=d["split"] == "yes",
        running_header=d["running"] in ("header", "both"), running_footer=d["running"] in ("footer", "both"),
        page_numbers=d["page_numbers"] == "yes", instructions=d["instructions"] == "yes",
        routing=bool(rng.random() < 0.7), font=d["font"], font_size=size,
        leading=round(size * float(rng.uniform(1.25, 1.45)), 1),
    )
    skew = (0.0, 0.7) if d["skew"] == "low" else (0.7, 2.0)
    scan = ScanSettings(
        dpi=int(d["dpi"]), min_rotation=skew[0], max_rotation=skew[1],
        blur={"none": 0.0, "light": 0.6, "heavy": 1.1}[d["blur"]],
        noise={"none": 6.0, "some": 14.0, "heavy": 24.0}[d["speckle"]],
        speckle={"none": 0.0, "some": 0.002, "heavy": 0.006}[d["speckle"]],
        jpeg_quality=int(rng.integers(70, 91)) if d["jpeg"] == "high" else int(rng.integers(30, 51)),
    )
    return style, scan, d


def keywords(seed: int, dims: dict[str, str]) -> str:
    """The PDF metadata recording a random layout: `opinionbench-random-style {"seed": ..., ...}`."""
    return "opinionbench-random-style " + json.dumps({"seed": seed, **dims}, sort_keys=True)
