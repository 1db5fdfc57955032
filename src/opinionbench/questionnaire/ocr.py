"""Questionnaire PDF → words with confidences and boxes (poppler + tesseract), page-parallel.

Each page is an independent job: rasterised by poppler, read by tesseract (single-threaded,
`OMP_THREAD_LIMIT=1`, so N worker processes use N cores), and saved on its own under a
content-addressed page cache (PDF hash + settings + page). A killed run therefore keeps every
finished page, and a rerun with the same PDF and settings only OCRs what is missing. One bad
page (blank, unreadable) is reported and the other pages go on.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm import tqdm

from opinionbench.errors import one_line
from opinionbench.io import file_sha256, write_parquet
from opinionbench.questionnaire.errors import QuestionnaireError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

OCR_COLUMNS = [
    "page", "block", "par", "line", "word", "left", "top", "width", "height", "conf", "text",
    "dpi", "page_width", "page_height",
]


@dataclass(frozen=True)
class OcrSettings:
    dpi: int = 200
    psm: int = 6  # one uniform block of text: keeps the percentage and label columns on one line
    lang: str = "eng"
    binarize: bool = True  # median filter + Otsu threshold: scan noise otherwise hides short lines (`12  3`)

    def tesseract_config(self) -> str:
        return f"--psm {self.psm}"


def clean_scan(image: PILImage) -> PILImage:
    """Median-filter the speckle and binarise at Otsu's threshold (grayscale PIL image in, binary out).

    Tesseract drops or garbles short, sparse lines (a percentage and a one-digit label) on a
    noisy scan; on a cleaned page it reads them.
    """
    import numpy as np
    from PIL import Image, ImageFilter

    smooth = np.asarray(image.convert("L").filter(ImageFilter.MedianFilter(3)), dtype=np.uint8)
    hist = np.bincount(smooth.ravel(), minlength=256).astype(float)
    levels = np.arange(256)
    weight_bg = np.cumsum(hist)
    weight_fg = weight_bg[-1] - weight_bg
    mean_bg = np.cumsum(hist * levels) / np.maximum(weight_bg, 1)
    mean_fg = ((hist * levels).sum() - np.cumsum(hist * levels)) / np.maximum(weight_fg, 1)
    threshold = int(np.argmax(weight_bg * weight_fg * (mean_bg - mean_fg) ** 2))
    return Image.fromarray(np.where(smooth > threshold, 255, 0).astype(np.uint8), mode="L")


class PageWarning(UserWarning):
    """A page that yields nothing usable (blank, unreadable): reported, never fatal for the file."""


def check_pdf(path: Path) -> int:
    """Number of pages of a readable, unencrypted PDF; QuestionnaireError naming the file otherwise."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    path = Path(path)
    if not path.is_file():
        raise QuestionnaireError(f"{path}: questionnaire PDF not found")
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise QuestionnaireError(f"{path}: not a PDF file (no %PDF header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(str(path), strict=False)
            if reader.is_encrypted:
                raise QuestionnaireError(f"{path}: PDF is encrypted; decrypt it first (qpdf --decrypt)")
            pages = len(reader.pages)
    except QuestionnaireError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise QuestionnaireError(f"{path}: unreadable or truncated PDF ({one_line(exc)})") from None
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 1024))
        tail = fh.read()
    if b"%%EOF" not in tail:
        warnings.warn(f"{path}: PDF has no %%EOF marker (truncated?); OCR continues with the pages poppler can read",
                      PageWarning, stacklevel=2)
    if pages == 0:
        raise QuestionnaireError(f"{path}: PDF has no pages")
    return pages


def ocr_page(pdf: Path, page: int, settings: OcrSettings) -> pd.DataFrame:
    """One page → its words (tesseract `image_to_data`), coordinates in pixels at `settings.dpi`."""
    import pytesseract
    from pdf2image import convert_from_path

    try:
        images = convert_from_path(str(pdf), dpi=settings.dpi, first_page=page, last_page=page, grayscale=True)
    except Exception as exc:
        raise QuestionnaireError(f"{pdf}: page {page}: cannot rasterise ({one_line(exc)})") from None
    if not images:
        raise QuestionnaireError(f"{pdf}: page {page}: poppler returned no image (truncated PDF?)")
    image = clean_scan(images[0]) if settings.binarize else images[0]
    data = pytesseract.image_to_data(
        image, lang=settings.lang, config=settings.tesseract_config(), output_type=pytesseract.Output.DATAFRAME
    )
    words = data[(data["level"] == 5) & data["text"].notna()].copy()
    words["text"] = words["text"].astype(str).str.strip()
    words = words[words["text"] != ""]
    words = words.rename(columns={"page_num": "_tess_page", "block_num": "block", "par_num": "par",
                                  "line_num": "line", "word_num": "word"})
    words["page"] = page
    words["dpi"] = settings.dpi
    words["page_width"], words["page_height"] = image.size
    words["conf"] = words["conf"].astype(float)
    for col in ("block", "par", "line", "word", "left", "top", "width", "height", "page_width", "page_height"):
        words[col] = words[col].astype(int)
    return words[OCR_COLUMNS].reset_index(drop=True)


def _page_cache_path(cache_dir: Path, digest: str, page: int, settings: OcrSettings) -> Path:
    variant = f"dpi{settings.dpi}-psm{settings.psm}-{settings.lang}{'-bin' if settings.binarize else ''}"
    return cache_dir / f"{digest[:20]}-{variant}" / f"page-{page:04d}.parquet"


def _page_job(pdf: str, page: int, settings: OcrSettings, target: str) -> tuple[int, str | None]:
    """Worker: OCR one page into its cache file; a failure comes back as a one-line message."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        write_parquet(ocr_page(Path(pdf), page, settings), Path(target))
        return page, None
    except Exception as exc:  # isolate the page: the others still get read
        return page, one_line(exc)


def _single_thread_tesseract() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"


def ocr_pdf(
    pdf: Path,
    *,
    settings: OcrSettings = OcrSettings(),
    workers: int = 2,
    cache_dir: Path = Path("data/cache/ocr"),
    pages: list[int] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """All words of a questionnaire PDF; pages OCR'd in parallel and cached one by one.

    Pages that fail or are blank are reported with a PageWarning naming file and page; the
    result holds every other page. Raises QuestionnaireError when the file itself is unusable.
    """
    pdf = Path(pdf)
    n_pages = check_pdf(pdf)
    digest = file_sha256(pdf)
    wanted = pages or list(range(1, n_pages + 1))
    targets = {p: _page_cache_path(Path(cache_dir), digest, p, settings) for p in wanted}
    todo = [p for p in wanted if not targets[p].exists()]
    failures: dict[int, str] = {}
    bar = tqdm(total=len(wanted), initial=len(wanted) - len(todo), desc=f"OCR {pdf.name}", unit="page",
               disable=not progress)
    if todo:
        if workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), initializer=_single_thread_tesseract) as pool:
                futures = [pool.submit(_page_job, str(pdf), p, settings, str(targets[p])) for p in todo]
                for fut in as_completed(futures):
                    page, error = fut.result()
                    if error:
                        failures[page] = error
                    bar.update()
        else:
            _single_thread_tesseract()
            for p in todo:
                page, error = _page_job(str(pdf), p, settings, str(targets[p]))
                if error:
                    failures[page] = error
                bar.update()
    bar.close()
    frames = []
    for p in wanted:
        if p in failures:
            warnings.warn(failures[p], PageWarning, stacklevel=2)
            continue
        frame = pd.read_parquet(targets[p])
        if frame.empty:
            warnings.warn(f"{pdf}: page {p}: blank page (no text found)", PageWarning, stacklevel=2)
        frames.append(frame)
    if not frames or all(f.empty for f in frames):
        raise QuestionnaireError(f"{pdf}: no text on any page ({len(failures)} of {len(wanted)} pages failed)")
    return pd.concat(frames, ignore_index=True)[OCR_COLUMNS]
