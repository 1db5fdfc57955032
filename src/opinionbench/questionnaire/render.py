"""Render a wave's questions as a Pew-style topline PDF, optionally as a degraded "scan".

Real users bring Pew's own questionnaire PDFs; the renderer exists so that the embedded sample
wave, the tests and the accuracy benchmark have questionnaires whose truth (the codebook) is
known. The layout follows a Pew topline: a header (wave, field dates, N), then per question the
routing line (`ASK ALL:`), the code with the wording in a hanging indent, and each option with
its topline percentage. The geometry and the printed forms are `layout.py`'s, which the
segmenter reads back.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFilter

from opinionbench.errors import OpinionBenchError
from opinionbench.io import atomic_path
from opinionbench.questionnaire.layout import LAYOUT, Layout, code_label, footer_line, routing_line
from opinionbench.questionnaire.random_style import ScanSettings, draw_style, keywords as random_keywords
from opinionbench.questionnaire.styles import RenderQuestion, wrap_text

if TYPE_CHECKING:
    from opinionbench.survey import Wave

FONT = "Helvetica"
BOLD = "Helvetica-Bold"


def format_percent(share: float) -> str:
    """Pew prints whole percentages and `<1` for anything below half a percent but above zero."""
    value = 100.0 * share
    if 0 < value < 0.5:
        return "<1"
    return str(int(np.floor(value + 0.5)))


def wave_render_questions(wave: Wave, routing: dict[str, str] | None = None) -> list[RenderQuestion]:
    """Questions of a loaded `Wave` with toplines from its weighted Overall distribution.

    Percentages are of all respondents (as in a topline), so substantive shares are scaled by
    one minus the refusal rate and the refusals get their own line.
    """
    from opinionbench.survey import distributions

    routing = routing or {}
    dist = distributions(wave)
    overall = dist[dist["attribute"] == "Overall"].set_index("qkey")
    out = []
    for q in wave.questions.itertuples():
        if q.qkey not in overall.index:
            continue
        row = overall.loc[q.qkey]
        refusal = float(row["refusal_rate"])
        percents = [format_percent(float(p) * (1.0 - refusal)) for p in row["probs"]]
        refusal_label = "/".join(q.refusal_options) if len(q.refusal_options) else None
        out.append(RenderQuestion(
            qcode=q.qcode,
            routing=routing.get(q.qcode, "ASK ALL"),
            wording=q.question,
            options=list(q.options),
            percents=percents,
            refusal_label=refusal_label,
            refusal_percent=format_percent(refusal) if refusal_label else None,
        ))
    return out


def render_pdf(
    questions: list[RenderQuestion],
    path: Path,
    *,
    wave: str,
    title: str | None = None,
    dates: tuple[str | None, str | None] = (None, None),
    n: int | None = None,
    layout: Layout = LAYOUT,
    style: str = "topline",
    seed: int = 0,
) -> int:
    """Write the born-digital questionnaire PDF; returns the number of pages.

    `topline` (our own layout) never splits a question block across pages, so each block has one
    page and one bounding box; the other `styles.STYLES` are drawn by `render_styles`, and
    `random` is the layout `random_style.draw_style(seed)` draws.
    """
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    if style != "topline":
        from opinionbench.questionnaire.render_styles import render_styled_pdf
        from opinionbench.questionnaire.styles import RANDOM, style_named

        if style == RANDOM:
            drawn, _, dims = draw_style(seed)
            return render_styled_pdf(questions, path, drawn, wave=wave, title=title, dates=dates, n=n, seed=seed,
                                     keywords=random_keywords(seed, dims))
        return render_styled_pdf(questions, path, style_named(style), wave=wave, title=title, dates=dates, n=n,
                                 seed=seed)

    path = Path(path)
    tmp = atomic_path(path)
    c = canvas.Canvas(str(tmp), pagesize=(layout.page_width, layout.page_height), invariant=1)
    size, lead, m = layout.font_size, layout.leading, layout.margin
    text_right = layout.page_width - m
    page = 1
    y = layout.page_height - m

    def footer() -> None:
        c.setFont(FONT, 8)
        c.drawCentredString(layout.page_width / 2, m / 2, footer_line(page))

    c.setFont(BOLD, 13)
    c.drawString(m, y, "PEW RESEARCH CENTER")
    y -= 18
    c.drawString(m, y, f"AMERICAN TRENDS PANEL WAVE {wave.lstrip('W')}")
    y -= 18
    c.setFont(FONT, size)
    if title:
        c.drawString(m, y, f"TOPLINE: {title}"[:100])
        y -= lead
    start, end = dates
    if start or end:
        c.drawString(m, y, f"Fielded {start or '?'} to {end or '?'}")
        y -= lead
    if n:
        c.drawString(m, y, f"N={n:,}")
        y -= lead
    y -= lead

    for q in questions:
        code_text = code_label(q.qcode)
        code_w = stringWidth(code_text, BOLD, size)
        first_x = max(layout.wording_x, m + code_w + 8)
        wording_lines = wrap_text(q.wording, text_right - first_x, size)
        label_x = layout.wording_x + layout.label_offset
        option_rows: list[tuple[str, list[str]]] = []
        labels = list(zip(q.percents, q.options))
        if q.refusal_label:
            labels.append((q.refusal_percent or "0", q.refusal_label))
        for pct, label in labels:
            option_rows.append((pct, wrap_text(label, text_right - label_x, size)))
        height = lead * (2 + len(wording_lines) + sum(len(r[1]) for r in option_rows)) + lead
        if y - height < m and y < layout.page_height - m - 1:
            footer()
            c.showPage()
            page += 1
            y = layout.page_height - m
        c.setFont(FONT, size)
        c.drawString(m, y, routing_line(q.routing))
        y -= lead
        c.setFont(BOLD, size)
        c.drawString(m, y, code_text)
        c.setFont(FONT, size)
        for i, line in enumerate(wording_lines):
            c.drawString(first_x if i == 0 else layout.wording_x, y, line)
            y -= lead
        y -= lead * 0.4
        for pct, label_lines in option_rows:
            c.drawRightString(layout.wording_x + layout.percent_right, y, pct)
            for line in label_lines:
                c.drawString(label_x, y, line)
                y -= lead
        y -= lead
    footer()
    c.showPage()
    c.save()
    tmp.replace(path)
    return page


def degrade(image: Image.Image, rng: np.random.Generator, max_rotation: float = 0.6, blur: float = 0.6,
            noise: float = 12.0, *, min_rotation: float = 0.0, speckle: float = 0.0) -> Image.Image:
    """A photocopy-like scan: rotation (skew), blur, sensor noise and speckle on a grayscale page."""
    gray = image.convert("L")
    if min_rotation > 0:  # a skew of at least `min_rotation` degrees, either way
        angle = float(rng.choice([-1.0, 1.0]) * rng.uniform(min_rotation, max_rotation))
    else:
        angle = float(rng.uniform(-max_rotation, max_rotation))
    gray = gray.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=255)
    if blur > 0:
        gray = gray.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(gray, dtype=np.float32)
    pixels = pixels + rng.normal(0.0, noise, size=pixels.shape)
    if speckle > 0:  # dust and toner specks: isolated black and white pixels
        flips = rng.random(pixels.shape)
        pixels[flips < speckle / 2] = 0.0
        pixels[flips > 1 - speckle / 2] = 255.0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def scan_pdf(source: Path, path: Path, *, dpi: int = 200, seed: int = 0, jpeg_quality: int = 60,
             scan: ScanSettings | None = None, keywords: str = "") -> int:
    """Rasterise a PDF, degrade each page and re-wrap the images as an image-only PDF.
    `scan` (a random layout's draw) overrides dpi and JPEG quality; `keywords` go into the metadata."""
    from pdf2image import convert_from_path

    if scan is not None:
        dpi, jpeg_quality = scan.dpi, scan.jpeg_quality
    if not 150 <= dpi <= 300:
        raise OpinionBenchError(f"scan dpi must be within 150-300 (got {dpi})")
    rng = np.random.default_rng(seed)
    images = convert_from_path(str(source), dpi=dpi, grayscale=True)
    if scan is None:
        pages = [degrade(p, rng) for p in images]
    else:
        pages = [degrade(p, rng, scan.max_rotation, scan.blur, scan.noise, min_rotation=scan.min_rotation,
                         speckle=scan.speckle) for p in images]
    tmp = atomic_path(Path(path))
    buffers = []
    for page in pages:  # JPEG-compress each page: a noisy scan must stay small enough to commit
        buf = io.BytesIO()
        page.save(buf, format="JPEG", quality=jpeg_quality)
        buffers.append(Image.open(io.BytesIO(buf.getvalue())))
    extra = {"keywords": keywords} if keywords else {}
    buffers[0].save(tmp, format="PDF", save_all=True, append_images=buffers[1:], resolution=float(dpi), **extra)
    tmp.replace(path)
    return len(pages)


def render_wave_questionnaire(
    sav_path: Path,
    pdf_path: Path,
    *,
    scanned: bool = True,
    dpi: int = 200,
    seed: int = 0,
    max_questions: int | None = None,
    routing: dict[str, str] | None = None,
    style: str = "topline",
) -> int:
    """`.sav` → questionnaire PDF in `style` (scanned by default); returns the page count.
    For `style="random"` the seed draws the layout and the scan (its dpi replaces `dpi`)."""
    from opinionbench.survey import load_wave

    wave = load_wave(sav_path)
    if routing is None and wave.wave == "W900":
        from opinionbench.sample import QUESTIONS

        routing = {q.qcode: q.routing for q in QUESTIONS}
    questions = wave_render_questions(wave, routing)
    if max_questions:
        questions = questions[:max_questions]
    kwargs = dict(wave=wave.wave, title=wave.topic, dates=(wave.wave_start, wave.wave_end), n=len(wave.weights),
                  style=style, seed=seed)
    pdf_path = Path(pdf_path)
    if not scanned:
        return render_pdf(questions, pdf_path, **kwargs)
    clean = pdf_path.with_name(f".{pdf_path.stem}.clean.pdf")
    try:
        render_pdf(questions, clean, **kwargs)
        if style == "random":
            _, scan, dims = draw_style(seed)
            return scan_pdf(clean, pdf_path, seed=seed, scan=scan, keywords=random_keywords(seed, dims))
        return scan_pdf(clean, pdf_path, dpi=dpi, seed=seed)
    finally:
        clean.unlink(missing_ok=True)
