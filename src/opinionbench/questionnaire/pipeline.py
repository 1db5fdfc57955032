"""OCR'd blocks → corrected questions, the same way for every backend.

For each block: find the codebook entry of its code (tolerating an OCR'd code), run the chosen
backend, put the result through the drift guard, reconcile the printed topline with the weighted
distribution, and keep the whole trail (OCR text, confidence, box, diff, cache key) for review
and provenance. A backend failure on one question sends that question to review; the others go on.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rapidfuzz import fuzz, process
from tqdm import tqdm

from opinionbench.questionnaire.correct import CorrectionBackend, Hint, make_backend
from opinionbench.questionnaire.correct.settings import CorrectionParams
from opinionbench.questionnaire.drift import check_drift, similarity
from opinionbench.questionnaire.errors import CorrectionError
from opinionbench.questionnaire.layout import fold_code
from opinionbench.questionnaire.reconcile import reconcile
from opinionbench.questionnaire.segment import Block
from opinionbench.questionnaire.text import merged_opcodes

if TYPE_CHECKING:
    from opinionbench.survey import Wave

QCODE_MATCH_MIN_RATIO = 70.0
WORDING_MATCH_MIN_SIMILARITY = 0.8
CORRECTED_COLUMNS = [
    "qkey", "wave", "qcode", "qcode_ocr", "routing", "question", "options", "refusal_options",
    "question_ocr", "options_ocr", "percents_ocr", "page", "bbox", "dpi", "confidence", "min_confidence",
    "ocr_text", "backend", "model", "cache_key", "notes", "diff", "drift", "hint_similarity", "in_codebook",
    "status", "review_reasons", "topline_ok", "topline_max_diff", "topline_detail", "source",
]


def wave_hints(wave: Wave) -> dict[str, Hint]:
    """Codebook entries of a loaded `Wave`, by qcode."""
    return {
        q.qcode: Hint(q.qcode, q.question, list(q.options), list(q.refusal_options))
        for q in wave.questions.itertuples()
    }


def wave_toplines(wave: Wave) -> dict[str, tuple[list[float], float]]:
    """Weighted Overall (probs, refusal rate) of a loaded `Wave`, by qcode."""
    from opinionbench.survey import distributions

    dist = distributions(wave)
    overall = dist[dist["attribute"] == "Overall"]
    code = dict(zip(wave.questions["qkey"], wave.questions["qcode"]))
    return {code[r.qkey]: (list(r.probs), float(r.refusal_rate)) for r in overall.itertuples() if r.qkey in code}


def match_block(block: Block, hints: dict[str, Hint], taken: set[str]) -> str | None:
    """The codebook code of a block: its printed code when exact, else the candidate code
    (near spelling) whose codebook wording the block's wording resembles most (`QCEN3` misread
    as `QCENS` is told from `QCEN5` by its wording), else the code-only match."""
    known = list(hints)
    if block.qcode in hints:
        return block.qcode
    near = process.extract(fold_code(block.qcode), {k: fold_code(k) for k in known}, scorer=fuzz.ratio,
                           limit=8, score_cutoff=60)
    candidates = [key for _, _, key in near if key not in taken] or [key for _, _, key in near]
    if candidates and block.wording:
        best = max(candidates, key=lambda k: similarity(block.wording, hints[k].question))
        if similarity(block.wording, hints[best].question) >= WORDING_MATCH_MIN_SIMILARITY:
            return best
    return match_qcode(block.qcode, known)


def match_qcode(code: str, known: list[str]) -> str | None:
    """The codebook code an OCR'd code stands for: exact, then equal up to OCR confusions
    (`QCENS` = `QCEN5`, `GAP2104_a` = `GAP21Q4_a`), then a near spelling that is clearly the
    closest (a tie between siblings like `Q4_c`/`Q4_e` is no match: review, not a guess)."""
    if code in known:
        return code
    folded = {}
    for k in known:
        folded.setdefault(fold_code(k), []).append(k)
    same = folded.get(fold_code(code), [])
    if len(same) == 1:
        return same[0]
    top = process.extract(fold_code(code), list(folded), scorer=fuzz.ratio, limit=2)
    if not top or top[0][1] < QCODE_MATCH_MIN_RATIO or len(folded[top[0][0]]) > 1:
        return None
    if len(top) > 1 and top[0][1] - top[1][1] < 5:
        return None
    return folded[top[0][0]][0]


def word_diff(before: str, after: str) -> str:
    """wdiff-style `[-old-]{+new+}` of the words that changed; empty when nothing did."""
    a, b = before.split(), after.split()
    parts = []
    for tag, s0, s1, d0, d1 in merged_opcodes(a, b):
        if tag == "equal":
            continue
        old = " ".join(a[s0:s1])
        new = " ".join(b[d0:d1])
        parts.append((f"[-{old}-]" if old else "") + (f"{{+{new}+}}" if new else ""))
    return " ".join(parts)


def correct_blocks(
    blocks: list[Block],
    *,
    wave_id: str,
    backend: CorrectionBackend,
    params: CorrectionParams,
    hints: dict[str, Hint] | None = None,
    toplines: dict[str, tuple[list[float], float]] | None = None,
    source: str = "",
    progress: bool = True,
) -> pd.DataFrame:
    """One row per block whatever its correction did: a failed or rejected one keeps the OCR text
    and is routed to review, so nothing unchecked reaches the dataset and nothing is dropped."""
    hints = hints or {}
    toplines = toplines or {}
    known = list(hints)
    exact = {b.qcode for b in blocks if b.qcode in hints}
    rows = []
    for block in tqdm(blocks, desc=f"correct {wave_id} ({backend.name})", unit="question", disable=not progress):
        qcode = match_block(block, hints, exact) if known else block.qcode
        hint = hints.get(qcode) if qcode else None
        qcode = qcode or block.qcode
        reasons: list[str] = []
        model = cache_key = None
        notes: list[str] = []
        try:
            result = backend.correct(block, hint)
            question, options, model, cache_key, notes = (
                result.question, result.options, result.model, result.cache_key, result.notes)
            verdict = check_drift(block.wording, block.options, question, options, hint.question if hint else None,
                                  threshold=params.drift_threshold, hint_min_similarity=params.hint_min_similarity,
                                  hint_options=hint.options if hint else None)
            reasons += verdict.reasons
            d, sim = verdict.drift, verdict.hint_similarity
        except CorrectionError as exc:
            question, options, d, sim = block.wording, list(block.options), None, None
            cache_key = getattr(exc, "cache_key", None)
            reasons.append(f"correction failed: {exc}")
        if reasons and backend.name != "none":
            # a rejected correction never reaches the dataset: keep the OCR text, flag for review
            notes.append(f"rejected {backend.name} correction: {question!r} {options!r}")
            question, options = block.wording, list(block.options)
        if hint is None and known:
            reasons.append("code not in the codebook")
        if not block.options:  # its code is printed, its options could not be read
            reasons.append("options not read from the page")
        probs, refusal = toplines.get(qcode, (None, None))
        check = reconcile(block.percents, probs, refusal)
        if check.ok is False:
            reasons.append(f"topline mismatch: {check.detail}")
        rows.append({
            "qkey": f"{qcode}_{wave_id}", "wave": wave_id, "qcode": qcode, "qcode_ocr": block.qcode,
            "routing": block.routing, "question": question, "options": options,
            "refusal_options": list(hint.refusal_options) if hint else list(block.refusal_options),
            "question_ocr": block.wording, "options_ocr": list(block.options), "percents_ocr": list(block.percents),
            "page": block.page, "bbox": list(block.bbox), "dpi": block.dpi, "confidence": block.confidence,
            "min_confidence": block.min_confidence, "ocr_text": block.ocr_text, "backend": backend.name,
            "model": model, "cache_key": cache_key, "notes": list(notes),
            "diff": word_diff(" | ".join([block.wording, *block.options]), " | ".join([question, *options])),
            "drift": d, "hint_similarity": sim, "in_codebook": hint is not None,
            "status": "needs_review" if reasons else "accepted", "review_reasons": reasons,
            "topline_ok": check.ok, "topline_max_diff": check.max_diff, "topline_detail": check.detail,
            "source": source,
        })
    frame = pd.DataFrame(rows, columns=CORRECTED_COLUMNS)
    dup = frame["qkey"].duplicated(keep=False)
    if dup.any():
        for i in frame.index[dup]:
            frame.at[i, "review_reasons"] = [*frame.at[i, "review_reasons"], "code printed more than once"]
            frame.at[i, "status"] = "needs_review"
    return frame


def read_blocks_of(
    words: pd.DataFrame,
    *,
    hints: dict[str, Hint] | None,
    toplines: dict[str, tuple[list[float], float]] | None = None,
    reader: str = "anchored",
    source: str = "questionnaire",
) -> list[Block]:
    """Question blocks from OCR words: anchored on the codebook when there is one (any layout),
    else by our topline's layout rules (nothing to anchor on)."""
    from opinionbench.questionnaire.reader import read_blocks
    from opinionbench.questionnaire.segment import segment

    if reader == "anchored" and hints:
        return read_blocks(words, hints, toplines)
    if reader == "anchored":
        warnings.warn(f"{source}: no codebook to anchor on: the topline layout rules read it", stacklevel=2)
    return segment(words, source=source)


def missing_questions(corrected: pd.DataFrame, hints: dict[str, Hint]) -> list[str]:
    """Codebook codes the questionnaire did not yield (not printed, or not found by OCR)."""
    return sorted(set(hints) - set(corrected["qcode"]))


def read_questionnaire(
    pdf_path: str | Path,
    wave: Wave | None = None,
    correction: str = "codebook",
    *,
    params: CorrectionParams | None = None,
    dpi: int = 200,
    psm: int = 6,
    reader: str = "anchored",
    workers: int = 2,
    ocr_cache_dir: str | Path | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """A questionnaire PDF → one row per question found (qcode, question, options, page, confidence, source...).

    `wave` (a `Wave` from `opinionbench.survey.load_wave`) supplies the codebook hints and the
    toplines; without it the `codebook` backend has nothing to align with and the OCR text is
    returned as read (with a warning).
    """
    import tempfile

    from opinionbench.questionnaire.ocr import OcrSettings, ocr_pdf

    params = params or CorrectionParams(backend=correction)
    if correction == "codebook" and wave is None:
        warnings.warn(f"{pdf_path}: no wave given: codebook correction has no codebook; OCR text returned", stacklevel=2)
    pdf_path = Path(pdf_path)
    with tempfile.TemporaryDirectory() as tmp:
        words = ocr_pdf(pdf_path, settings=OcrSettings(dpi=dpi, psm=psm), workers=workers,
                        cache_dir=Path(ocr_cache_dir) if ocr_cache_dir else Path(tmp), progress=progress)
    hints = wave_hints(wave) if wave is not None else None
    toplines = wave_toplines(wave) if wave is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if wave is None else "default")
        blocks = read_blocks_of(words, hints=hints, toplines=toplines, reader=reader, source=str(pdf_path))
    wave_id = wave.wave if wave is not None else pdf_path.stem.split("_")[0]
    frame = correct_blocks(
        blocks, wave_id=wave_id, backend=make_backend(correction, params), params=params,
        hints=hints, toplines=toplines, source=str(pdf_path), progress=progress,
    )
    return frame
