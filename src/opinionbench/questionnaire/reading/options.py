"""A question's options: the codebook labels located in order in the lines below its anchor
(however marked, wherever the percentages are), their percentages, and which of several
percentage columns is this wave's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from opinionbench.questionnaire.reading.lines import (BULLET, MARKER, SPECK, SPECK_CHARS, TextLine, content_words,
                                                      is_percent, leading_noise)
from opinionbench.questionnaire.reading.settings import ReaderSettings
from opinionbench.questionnaire.segment import parse_percent
from opinionbench.questionnaire.text import fold_digits, ocr_fold

DROPPED_WORD_PENALTY = 25.0
BULLET_CHARS = "•*«»·°©®¢+~\u25a1\u2610 "  # a bullet or box OCR glued to a label's first word


def label_match(label: str, lines: list[TextLine], j: int, settings: ReaderSettings) -> tuple[float, int, str]:
    """How well lines j.. (one to `max_label_lines`) read as `label`: (score, lines used, OCR'd label).

    A line's percentage-like words are not the label's unless the label has them (`under 18`);
    a following line that starts with a marker, bullet or percentage is the next option's."""
    if label.strip().isdigit():
        return number_label_match(label.strip(), lines[j]) if j < len(lines) else (0.0, 0, "")
    want = ocr_fold(label)
    own = {w.strip(".,()") for w in label.lower().split()}  # as printed: `I` is a word, `1` a percentage
    own_folded = {w.strip(".,()") for w in want.split()}  # `—` for `-`
    label_digits = any(ch.isdigit() for ch in label)
    best = (0.0, 0, "")
    words: list[str] = []
    for m in range(settings.max_label_lines):
        if j + m >= len(lines):
            break
        ln = lines[j + m]
        lead = next((w for w in ln.words if not SPECK.match(w)), "")  # past OCR's specks (`. _ providing`)
        if m and lead and leading_noise(lead) and lead.lower().strip(".,()") not in own:
            break  # the next option's line
        split = [part for w in ln.words for part in (GLUED_DASH.match(w).groups() if GLUED_DASH.match(w) else (w,))]
        words = words + [w for w in split if w.lower().strip(".,()") in own
                         or not any(ch.isdigit() for ch in w) and ocr_fold(w).strip(".,()") in own_folded
                         or not is_percent(w) and any(ch.isalpha() for ch in w)
                         and (label_digits or len(w) > 3 or not any(ch.isdigit() for ch in w))]
        # not `=30`, nor a percentage OCR read with a letter (`s4`, `1S`) in a label without digits
        # the best run of words: markers and OCR noise may sit at either end
        for a in range(min(3, len(words))):
            for b in range(a + 1, len(words) + 1):
                text = " ".join(words[a:b])
                score = fuzz.ratio(ocr_fold(text), want) - DROPPED_WORD_PENALTY * dropped_words(words[:a] + words[b:])
                if score > best[0]:
                    best = (score, m + 1, text)
    return best


def digits(word: str) -> str:
    """A word read where a number is expected, with OCR's look-alikes folded (`§` 5, `O` 0, `3°9` 39)."""
    return fold_digits(word.strip(".)"))


def split_number_label(word: str, label: str) -> str | None:
    """The percentage in a word that also holds a numeric label (`11`: 1% of `1`; `135`: 13% of `5`)."""
    core = digits(word)
    for rest in (core[: -len(label)] if core.endswith(label) else None,
                 core[len(label):] if core.startswith(label) else None):
        if rest and parse_percent(rest) is not None:
            return parse_percent(rest)
    return None


def number_label_match(label: str, ln: TextLine) -> tuple[float, int, str]:
    """A numeric label (a scale point `5`) is a whole word of its line, or glued to its percentage."""
    score = 0.0
    for w in ln.words:
        if w.strip(".)") == label:
            score = max(score, 100.0)
        elif digits(w) == label or split_number_label(w, label) is not None:
            score = max(score, 90.0)
    score -= DROPPED_WORD_PENALTY * dropped_words(ln.words)
    return (score, 1, label) if score > 0 else (0.0, 0, "")


def dropped_words(words: list[str]) -> int:
    """Words left out of an option label that look like words, not like OCR specks (`ie)`, `~`)."""
    return sum(sum(ch.isalpha() for ch in w) >= 3 for w in words)


def percents_of(ln: TextLine, label_text: str) -> list[str]:
    """The line's percentages in print order, without the label's own words (a number in it, the
    label itself when it is a number) and without a bullet in front of the label."""
    label = label_text.strip()
    if not label.isdigit():
        own = set(label.split())
        words = [w for w in ln.words if w not in own]
        while words and BULLET.match(words[0]) and not any(ch.isdigit() for ch in words[0]):
            words = words[1:]
        return [v for v in (parse_percent(w) for w in words) if v is not None]
    words = list(ln.words)
    exact = [k for k, w in enumerate(words) if w.strip(".)") == label]
    if exact and sum(is_percent(w) for w in words) > 1:
        del words[exact[-1]]
    elif not exact:
        words = [split_number_label(w, label) or w for w in words]
    return [v for v in (parse_percent(w) for w in words) if v is not None]


def column_choice(percents: list[list[str]], expected: list[float] | None) -> int:
    """Which of several percentage columns is this wave's: the one nearest the weighted topline."""
    width = max((len(p) for p in percents), default=0)
    if width <= 1 or not expected:
        return 0

    def cost(c: int) -> float:
        total = 0.0
        for p, e in zip(percents, expected):
            if c >= len(p):
                total += 100.0
            else:
                total += abs((0.0 if p[c] == "<1" else float(p[c])) - e)
        return total

    return min(range(width), key=cost)


@dataclass
class Found:
    options: list[str]
    percents: list[list[str]]
    first: int  # index of the first option line (len(region) when none)
    last: int
    labels: list[int] = field(default_factory=list)  # which codebook label each option is


def find_options(labels: list[str], region: list[TextLine], settings: ReaderSettings, pitch: float = 0.0,
                 above: TextLine | None = None) -> Found:
    """Codebook labels located in order in the region's lines (a monotone alignment); with the
    page's line `pitch`, labels of lines OCR lost between two found ones (`fill_lost_lines`)."""
    n, m = len(labels), len(region)
    table = [[label_match(label, region, j, settings) for j in range(m)] for label in labels]
    # best[k][j]: best total for labels k.. using lines j..
    best = [[0.0] * (m + 2) for _ in range(n + 1)]
    take = [[False] * (m + 1) for _ in range(n + 1)]
    for k in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            skip_line = best[k][j + 1]
            skip_label = best[k + 1][j]
            score, used, _ = table[k][j]
            use = score + best[k + 1][min(j + max(used, 1), m)] if score >= settings.option_min_ratio else -1
            best[k][j] = max(skip_line, skip_label, use)
            take[k][j] = use >= max(skip_line, skip_label) and use > 0
        best[k][m] = best[k + 1][m]
    placed: dict[int, tuple[int, str, int]] = {}  # label -> (line, OCR'd label, lines used)
    k = j = 0
    while k < n and j < m:
        if take[k][j]:
            _, used, text = table[k][j]
            placed[k] = (j, _unmarked(text, labels[k]), max(used, 1))
            k, j = k + 1, j + max(used, 1)
        elif best[k][j] == best[k][j + 1]:
            j += 1
        else:
            k += 1
    fill_gaps(placed, labels, region)
    lost = fill_lost_lines(placed, labels, region, pitch, above)
    order = sorted(set(placed) | set(lost))
    rows = [placed[k][0] for k in order if k in placed]
    return Found([placed[k][1] if k in placed else lost[k] for k in order],
                 [percents_of(region[placed[k][0]], placed[k][1]) if k in placed else [] for k in order],
                 rows[0] if rows else m, rows[-1] if rows else -1, order)


LOST_LINE_TOLERANCE = 0.3  # of the pitch: how far a gap may be from a whole number of lines


def fill_lost_lines(placed: dict[int, tuple[int, str, int]], labels: list[str], region: list[TextLine],
                    pitch: float, above: TextLine | None = None) -> dict[int, str]:
    """Labels printed on lines OCR lost entirely (a short line under heavy blur): between two found
    options with no line read between them, on one page and column, a gap of exactly as many
    missing line pitches as labels are missing there stands for those codebook labels."""
    out: dict[int, str] = {}
    if pitch <= 0:
        return out
    found = sorted(placed)
    for a, b in zip(found, found[1:]):
        if b - a < 2:
            continue
        j0, _, used = placed[a]
        j1 = placed[b][0]
        last, nxt = region[j0 + used - 1], region[j1]
        if j0 + used != j1 or last.page != nxt.page or last.column != nxt.column:
            continue
        lines = (nxt.top - last.top) / pitch - 1
        if abs(lines - (b - a - 1)) <= LOST_LINE_TOLERANCE:
            out.update({k: labels[k] for k in range(a + 1, b)})
    first = found[0] if found else 0
    if first:  # the first labels lost, right below the wording (which may stand a little apart)
        j = placed[first][0]
        prev = region[j - 1] if j else above
        if prev is not None and prev.page == region[j].page and prev.column == region[j].column:
            lines = (region[j].top - prev.top) / pitch - 1
            if first - LOST_LINE_TOLERANCE <= lines <= first + LOST_LINE_TOLERANCE + WORDING_GAP_PITCHES:
                out.update({k: labels[k] for k in range(first)})
    return out


WORDING_GAP_PITCHES = 0.7  # extra space a layout may leave between a question's wording and its options


GLUED_DASH = re.compile(r"^(\d{1,2})([-–—])$")  # `0-` of `0 - Worst possible life`
GLUED_MARKER = re.compile(r"^\(?[a-zA-Z\d]{1,2}[.)](?=[A-Za-z])")  # `c.A lower priority`


def _unmarked(text: str, label: str) -> str:
    """An OCR'd label without a bullet or marker glued to its first word (unless the label has it)."""
    text = text.lstrip(BULLET_CHARS).strip()
    if GLUED_MARKER.match(text) and not GLUED_MARKER.match(label):
        text = GLUED_MARKER.sub("", text)
    first = text.split(" ", 1)
    if len(first) == 2 and MARKER.match(first[0]) and not MARKER.match(label.split(" ", 1)[0]):
        text = first[1]  # `b. Somewhat good`: the marker OCR kept in the label's run
    return _without_specks(text, label)



def _without_specks(text: str, label: str) -> str:
    """The label without short words the label does not have, where leaving them out makes it read
    more like the label: speckle OCR read as words inside a label (`... all over the Co world`)."""
    own = {ocr_fold(w).strip(".,()") for w in label.split()}
    want = ocr_fold(label)
    words = text.split()
    k = 0
    while k < len(words):
        w = words[k]
        if len(w.strip(".,()")) <= SPECK_CHARS and ocr_fold(w).strip(".,()") not in own:
            rest = words[:k] + words[k + 1:]
            if rest and fuzz.ratio(ocr_fold(" ".join(rest)), want) > fuzz.ratio(ocr_fold(" ".join(words)), want):
                words = rest
                continue
        k += 1
    return " ".join(words)


def fill_gaps(placed: dict[int, tuple[int, str, int]], labels: list[str], region: list[TextLine]) -> None:
    """A label OCR garbled beyond recognition, between two found ones with exactly one line
    (holding a percentage, when some do) between them, is that line's text (or, for a scale
    point read as a number, its first number); the corrector then compares it with the label.
    A line left with its marker alone (OCR lost the word: `d.` for `d. None`) stands for the
    codebook label at that place."""
    n = len(labels)
    for k in range(1, n - 1):
        if k in placed or k - 1 not in placed or k + 1 not in placed:
            continue
        between = list(range(placed[k - 1][0] + placed[k - 1][2], placed[k + 1][0]))
        with_percent = [j for j in between if any(is_percent(w) for w in region[j].words)]
        between = with_percent or between
        if len(between) == 1:
            j = between[0]
            words = content_words(region[j]) or [w for w in region[j].words if not MARKER.match(w)][:1]
            text = " ".join(words)
            if labels[k].strip().isdigit():  # a scale point: its digits, not OCR's specks around them
                text = "".join(ch for ch in text if ch.isalnum()) or text
            elif sum(ch.isalpha() for ch in text) < 2:
                text = labels[k]
            placed[k] = (j, text, 1)
