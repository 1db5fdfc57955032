"""Questionnaire PDF → words with confidences and boxes (poppler + tesseract), page-parallel.

Each page is an independent job: rasterised by poppler, read by tesseract (single-threaded,
`OMP_THREAD_LIMIT=1`, so N worker processes use N cores), and saved on its own under a
content-addressed page cache (PDF hash + settings + page). A killed run therefore keeps every
finished page, and a rerun with the same PDF and settings only OCRs what is missing. One bad
page (blank, unreadable) is reported and the other pages go on.

A page is levelled (`deskew`), speckle-filtered and binarised at Otsu's threshold (`clean_scan`);
a faint page (grey ink: a blurred or 150-dpi scan, `ink_level`) goes to tesseract grey instead,
for its local (Sauvola) threshold, which keeps thin strokes that a global threshold fills in.
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
    "page", "column", "block", "par", "line", "word", "left", "top", "width", "height", "conf", "text",
    "dpi", "page_width", "page_height",
]
GUTTER_POINTS = 16.0  # a band of the page this wide without ink, between two text columns
GUTTER_STRIPS = 40  # the page body is cut into this many strips; a gutter is inkless in nearly all
COLUMN_START_WITHIN = 0.25  # share of the page width right of the gutter where a column's lines start
BAND = 0.07  # top and bottom share of a page where running headers and footers live


@dataclass(frozen=True)
class OcrSettings:
    dpi: int = 200
    psm: int = 6  # one uniform block of text: keeps the percentage and label columns on one line
    lang: str = "eng"
    binarize: bool = True  # median filter + Otsu threshold: scan noise otherwise hides short lines (`12  3`)
    deskew: bool = True  # level a skewed scan first (`deskew`)
    # a page whose ink is lighter than this grey level (`ink_level`: a blurred, low-resolution scan) is
    # thresholded locally by tesseract (Sauvola) instead of at Otsu's global level; 255: never
    faint_ink: int = 75

    def tesseract_config(self, faint: bool = False) -> str:
        return f"--psm {self.psm}" + (" -c thresholding_method=2" if faint else "")


def otsu_threshold(gray) -> int:
    """Otsu's grey level (numpy uint8 array in): the one that best splits ink from paper."""
    import numpy as np

    hist = np.bincount(gray.ravel(), minlength=256).astype(float)
    levels = np.arange(256)
    weight_bg = np.cumsum(hist)
    weight_fg = weight_bg[-1] - weight_bg
    mean_bg = np.cumsum(hist * levels) / np.maximum(weight_bg, 1)
    mean_fg = ((hist * levels).sum() - np.cumsum(hist * levels)) / np.maximum(weight_fg, 1)
    return int(np.argmax(weight_bg * weight_fg * (mean_bg - mean_fg) ** 2))


@dataclass(frozen=True)
class Despeckled:
    """A page's grey with the scan speckle median-filtered away, and Otsu's threshold of it: the
    binarised page (`clean_scan`), the ink level (`ink_level`) and the grey page tesseract reads
    when the ink is faint all come from it, so each page is filtered and thresholded once."""

    grey: PILImage
    threshold: int


def despeckle(image: PILImage) -> Despeckled:
    """A 3-pixel median filter (scan speckle gone, strokes kept) and Otsu's threshold of the result."""
    import numpy as np
    from PIL import ImageFilter

    grey = image.convert("L").filter(ImageFilter.MedianFilter(3))
    return Despeckled(grey, otsu_threshold(np.asarray(grey, dtype=np.uint8)))


def clean_scan(page: Despeckled) -> PILImage:
    """The despeckled page binarised at Otsu's threshold (binary grayscale PIL image out).

    Tesseract drops or garbles short, sparse lines (a percentage and a one-digit label) on a
    noisy scan; on a cleaned page it reads them.
    """
    import numpy as np
    from PIL import Image

    smooth = np.asarray(page.grey, dtype=np.uint8)
    return Image.fromarray(np.where(smooth > page.threshold, 255, 0).astype(np.uint8), mode="L")


INK_PERCENTILE = 10  # the grey level this share (%) of a page's ink pixels is at least as dark as
MAX_INK_SHARE = 0.2  # more "ink" than this share of the page: a blank page's noise split in two, not text


def ink_level(page: Despeckled) -> float:
    """How dark a page's ink is: the grey level (0 black - 255 white) of its darkest INK_PERCENTILE %
    of ink pixels (darker than Otsu's threshold, speckle median-filtered away); 0 for a page with
    no ink to speak of.

    Crisp print is near black (under 70 on the fixed styles' scans); a blurred or low-resolution
    scan smears thin strokes into grey (a 9-point serif scanned at 150 dpi and blurred: over 100).
    Otsu's one global threshold then fattens every such stroke into a blob (`e` and `c` fill in,
    `rn` runs into `m`), and tesseract loses whole lines; a local threshold keeps them thin."""
    import numpy as np

    smooth = np.asarray(page.grey, dtype=np.uint8)
    ink = smooth[smooth <= page.threshold]
    if ink.size == 0 or ink.size > MAX_INK_SHARE * smooth.size:
        return 0.0
    return float(np.percentile(ink, INK_PERCENTILE))


MAX_SKEW = 3.0  # degrees searched either way for a scan's skew
# Below this a page is read as it is: tesseract itself reads text lines tilted by under a degree,
# and a page read as it was keeps its OCR (and the LLM replies cached for that OCR) unchanged.
MIN_SKEW = 1.0


def skew_angle(image: PILImage) -> float:
    """The rotation (degrees, PIL's sense) that levels a page's text lines: the angle whose
    horizontal ink profile is sharpest (lines and the gaps between them), on a reduced copy.

    A scan skewed by a degree or two shifts a text column by more than the gutter between two
    columns over the height of the page, so the columns could not be told apart, and tesseract
    starts merging neighbouring lines."""
    import numpy as np
    from PIL import Image

    small = image.convert("L").reduce(4)
    ink = Image.fromarray(np.where(np.asarray(small) < 160, 255, 0).astype(np.uint8), mode="L")

    def sharpness(angle: float) -> float:
        rows = np.asarray(ink.rotate(angle, resample=Image.BILINEAR, fillcolor=0), dtype=np.float32).sum(axis=1)
        return float(np.square(np.diff(rows)).sum())

    coarse = max(np.arange(-MAX_SKEW, MAX_SKEW + 1e-9, 0.25), key=sharpness)
    return float(max(np.arange(coarse - 0.25, coarse + 0.25 + 1e-9, 0.05), key=sharpness))


def deskew(image: PILImage) -> PILImage:
    """The page rotated level (`skew_angle`); unchanged when it is already within MIN_SKEW."""
    from PIL import Image

    angle = skew_angle(image)
    if abs(angle) < MIN_SKEW:
        return image
    return image.convert("L").rotate(angle, resample=Image.BICUBIC, fillcolor=255)


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


def text_columns(image: PILImage, dpi: int) -> list[tuple[int, int]]:
    """The x ranges (pixels) of a page's text columns: split at an inkless band in the middle of the
    page (at least GUTTER_POINTS wide) with a wide run of text on either side; one range otherwise.

    Tesseract reads a page as one block of lines (psm 6: keeps a percentage and its label on one
    line); on a two-column page that interleaves the columns, so each column is read on its own.
    """
    import numpy as np

    ink = np.asarray(image.convert("L"), dtype=np.uint8) < 128
    height, width = ink.shape
    body = ink[int(height * BAND): int(height * (1 - BAND))]
    strips = np.array_split(body, GUTTER_STRIPS, axis=0)  # a title across both columns blocks one strip, not the gutter
    inked_strips = (np.stack([strip.sum(axis=0) for strip in strips]) > 2).sum(axis=0)
    per_x = body.sum(axis=0)
    lo, hi = int(width * 0.3), int(width * 0.7)
    runs, start = [], None  # inkless runs of pixel columns in the middle of the page
    for x in range(lo, hi + 1):
        free = x < hi and inked_strips[x] <= GUTTER_STRIPS // 20
        if free and start is None:
            start = x
        elif not free and start is not None:
            runs.append((start, x))
            start = None
    wide = [(a, b) for a, b in runs if b - a >= GUTTER_POINTS * dpi / 72]
    if not wide:
        return [(0, width)]
    a, b = min(wide, key=lambda r: abs((r[0] + r[1]) / 2 - width / 2))  # the gutter is the run nearest the middle
    # cut just right of the left column's ink: the right column's left edge (codes, markers) is
    # sparse enough to look free, the left column's ragged right edge is not
    best_mid = a + int(GUTTER_POINTS * dpi / 72) // 2
    inked = np.flatnonzero(per_x > 2)
    left, right = inked[inked < best_mid], inked[inked > best_mid]
    if len(left) == 0 or len(right) == 0 or min(np.ptp(left), np.ptp(right)) < 0.12 * width:
        return [(0, width)]
    # two columns run side by side: many strips have text on both sides of the gutter without
    # crossing it (a nearly empty last page with a line or two across it is one column)
    crossing = inked_strips[a:b].max()
    side_by_side = sum(bool(strip[:, :a].any() and strip[:, b:].any()) for strip in strips) - crossing
    if side_by_side < max(3, 2 * crossing):
        return [(0, width)]
    # a column's lines start near its left edge; a page whose right half holds only percentages at
    # the far right (and a few lines running across) is one column
    starts = [np.flatnonzero(strip[:, best_mid:].sum(axis=0) > 2) for strip in strips]
    starts = [int(s[0]) for s in starts if len(s)]
    if sum(x < COLUMN_START_WITHIN * width for x in starts) < 0.5 * len(starts):
        return [(0, width)]
    return [(0, int(best_mid)), (int(best_mid), width)]


def ocr_page(pdf: Path, page: int, settings: OcrSettings) -> pd.DataFrame:
    """One page → its words (tesseract `image_to_data`, each text column on its own), coordinates
    in pixels of the whole page at `settings.dpi`."""
    import pytesseract
    from pdf2image import convert_from_path

    try:
        images = convert_from_path(str(pdf), dpi=settings.dpi, first_page=page, last_page=page, grayscale=True)
    except Exception as exc:
        raise QuestionnaireError(f"{pdf}: page {page}: cannot rasterise ({one_line(exc)})") from None
    if not images:
        raise QuestionnaireError(f"{pdf}: page {page}: poppler returned no image (truncated PDF?)")
    image = deskew(images[0]) if settings.deskew else images[0]
    faint = False
    if settings.binarize:
        cleaned = despeckle(image)
        # a faint page goes to tesseract grey (speckle filtered), which thresholds it locally;
        # the Otsu-binarised page still finds the text columns
        faint = ink_level(cleaned) > settings.faint_ink
        image = clean_scan(cleaned)
    read = cleaned.grey if faint else image
    frames = []
    for column, (x0, x1) in enumerate(text_columns(image, settings.dpi)):
        crop = read if (x0, x1) == (0, image.size[0]) else read.crop((x0, 0, x1, image.size[1]))
        data = pytesseract.image_to_data(
            crop, lang=settings.lang, config=settings.tesseract_config(faint), output_type=pytesseract.Output.DATAFRAME
        )
        data["left"] = data["left"] + x0
        data["column"] = column
        frames.append(data)
    data = pd.concat(frames, ignore_index=True)
    words = data[(data["level"] == 5) & data["text"].notna()].copy()
    words["text"] = words["text"].astype(str).str.strip()
    words = words[words["text"] != ""]
    words = words.rename(columns={"page_num": "_tess_page", "block_num": "block", "par_num": "par",
                                  "line_num": "line", "word_num": "word"})
    words["page"] = page
    words["dpi"] = settings.dpi
    words["page_width"], words["page_height"] = image.size
    words["conf"] = words["conf"].astype(float)
    for col in ("column", "block", "par", "line", "word", "left", "top", "width", "height", "page_width",
                "page_height"):
        words[col] = words[col].astype(int)
    return words[OCR_COLUMNS].reset_index(drop=True)


def _page_cache_path(cache_dir: Path, digest: str, page: int, settings: OcrSettings) -> Path:
    variant = f"dpi{settings.dpi}-psm{settings.psm}-{settings.lang}{'-bin' if settings.binarize else ''}-cols{'-deskew' if settings.deskew else ''}-faint{settings.faint_ink}"
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
