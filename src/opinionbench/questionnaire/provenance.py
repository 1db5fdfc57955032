"""Where each question's text came from, carried into the built dataset as a JSON column.

`attach_questionnaire_text` is the build's one call: question wording from the corrected
questionnaire where the correction was accepted, from the codebook otherwise (`text_source`
says which), reviewed corrections applied last (`text_source: reviewed` where a person's wording
won), and a `provenance` JSON per question with the whole chain: codebook label, file, page,
box, OCR text and confidence, backend, model, cache key, diff, review.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import pandas as pd

from opinionbench.questionnaire.review import apply_reviews, load_reviews


def corrected_path(out_dir: Path, wave: str) -> Path:
    return Path(out_dir) / wave / "corrected.parquet"


def _json_safe(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and pd.isna(value):
        return None
    return value


def questionnaire_record(row: pd.Series) -> dict:
    return {
        "file": row["source"],
        "page": int(row["page"]),
        "bbox": [int(v) for v in row["bbox"]],
        "dpi": int(row["dpi"]),
        "routing": row["routing"],
        "qcode_ocr": row["qcode_ocr"],
        "ocr_text": row["ocr_text"],
        "ocr_confidence": float(row["confidence"]),
        "ocr_min_confidence": float(row["min_confidence"]),
        "correction_backend": row["backend"],
        "model": row["model"],
        "cache_key": row["cache_key"],
        "diff": row["diff"],
        "drift": _json_safe(row["drift"]),
        "status": row["status"],
        "review_reasons": _json_safe(row["review_reasons"]),
        "notes": _json_safe(row["notes"]),
        "topline_ok": _json_safe(row["topline_ok"]),
        "topline_detail": row["topline_detail"],
    }


def attach_questionnaire_text(questions: pd.DataFrame, corrected_files: dict[str, Path], reviews: Path | None,
                              release_text: dict[str, dict] | None = None) -> pd.DataFrame:
    """The build's questions table with questionnaire wording, `text_source` and `provenance`.

    `release_text` (qkey -> audit row of a published release: `their_question`, `status`,
    `reason`, `source`) replaces the codebook label where no accepted questionnaire text exists:
    the audit found our label cut short or naming another item. Reviews still apply last.
    """
    release_text = release_text or {}
    out = questions.copy()
    records: dict[str, dict] = {}
    for wave, path in corrected_files.items():
        if not Path(path).exists():
            warnings.warn(f"{path}: no corrected questionnaire for {wave} (run `dvc repro correct@{wave}`); "
                          "codebook wording used", stacklevel=2)
            continue
        corrected = pd.read_parquet(path)
        for _, row in corrected.drop_duplicates("qkey", keep=False).iterrows():
            records[row["qkey"]] = {"accepted": row["status"] == "accepted", "question": row["question"],
                                    "record": questionnaire_record(row)}
    provenance = []
    for i, row in out.iterrows():
        chain: dict = {"codebook": {"file": row["source_file"], "variable": row["qkey"], "label": row["question"]}}
        found = records.get(row["qkey"])
        if found:
            chain["questionnaire"] = found["record"]
        if found and found["accepted"]:
            out.at[i, "question"] = found["question"]
            out.at[i, "text_source"] = "questionnaire"
        elif row["qkey"] in release_text:
            audit = release_text[row["qkey"]]
            out.at[i, "question"] = audit["their_question"]
            out.at[i, "text_source"] = "release"
            chain["release"] = {"file": str(audit["source"]), "status": audit["status"], "reason": audit["reason"],
                                "codebook_label": row["question"]}
        else:
            out.at[i, "text_source"] = "codebook"
            if found:
                chain["note"] = "questionnaire correction routed to review; codebook wording used"
        chain["text_source"] = out.at[i, "text_source"]
        provenance.append(chain)
    out["provenance"] = provenance
    out, applied = apply_reviews(out, load_reviews(reviews), reviews)
    out["provenance"] = [
        json.dumps(chain | {"text_source": source, "manual_review": applied.get(k, [])}, ensure_ascii=False, default=str)
        for k, chain, source in zip(out["qkey"], out["provenance"], out["text_source"])
    ]
    return out


def crop_image(pdf: Path, page: int, bbox: list[int], dpi: int, pad: int = 12):
    """The block's region of the page (rasterised at the OCR dpi, so the box fits), a PIL image.

    A missing PDF raises FileNotFoundError naming it (pdf2image's own error names poppler)."""
    if not Path(pdf).is_file():
        raise FileNotFoundError(f"{pdf}: questionnaire PDF not found")
    image = _page_image(str(pdf), page, dpi)
    left, top, right, bottom = bbox
    return image.crop((max(0, left - pad), max(0, top - pad), min(image.width, right + pad), min(image.height, bottom + pad)))


@functools.lru_cache(maxsize=4)
def _page_image(pdf: str, page: int, dpi: int):
    """One rasterised page, kept for the next crop of the same page (an export crops many)."""
    from pdf2image import convert_from_path

    return convert_from_path(pdf, dpi=dpi, first_page=page, last_page=page, grayscale=True)[0]


def page_crop(pdf: Path, page: int, bbox: list[int], dpi: int, target: Path, pad: int = 12) -> Path:
    """Save the block's region of the page as PNG (`crop_image`)."""
    from opinionbench.io import atomic_path

    crop = crop_image(pdf, page, bbox, dpi, pad)
    tmp = atomic_path(Path(target))
    try:
        crop.save(tmp, format="PNG")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return Path(target)
