"""OCR words → question blocks, anchored on what the codebook already says, not on one layout.

The layout segmenter (`segment.py`) knows where our own topline puts codes, wording and
percentages; a questionnaire from another house or year breaks it. The codebook of the same
wave already tells what must be on the pages: every question's code, wording, option labels in
order and (from the microdata) its topline. So the reader only has to find them:

1. lines from the word boxes, per text column (a gutter free of words splits a page; a page OCR
   read as one column is cut at a gutter where many lines leave a wide gap, a table OCR cut
   into two columns is joined again row by row, and so is a long line OCR cut at a gutter that
   is none), in reading order; running headers, footers and page numbers dropped;
2. each codebook question anchored on the line where its printed code or the start of its
   wording (or, in a battery, its item) appears, with some support from its own option labels
   printed below, choosing the order-preserving set of anchors with the highest total
   similarity, so identical wordings fall into place by order;
3. its options found in the lines up to the next anchor by their labels, whatever marks them
   (`a.`, `1.`, nothing) and wherever the percentages sit; several percentage columns (trend
   toplines) are told apart by the weighted topline; a battery printed as a table takes its
   options from the header over the percentage columns and its stem from above the table;
4. a block stands only if it is its question's (`reading/identity.py`): some of its own option
   labels are printed (not just `Refused`), a battery item's own words are printed, no other
   codebook question's distinguishing words are printed more (sibling batteries whose stems
   differ by a word, questions with one wording and different options), and no other question
   starts between a battery's stem and the item (an item printed as another question's option).
   Otherwise the anchor is dropped and the choice made again, so an unprinted question is never
   claimed on another's lines.

The result is the same `Block` the segmenter returns, so correction, review and provenance do
not change. Without a codebook there is nothing to anchor on and the segmenter is used.
"""

from __future__ import annotations

import re

import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.layout import ROUTING, fold_code, printed_code, routing_of
from opinionbench.questionnaire.reading.anchors import EXACT_CODE_WEIGHT, Target, anchor_scores, choose_anchors, targets
from opinionbench.questionnaire.reading.identity import identities, item_printed, rival
from opinionbench.questionnaire.reading.lines import (SPECK_CHARS, TextLine, content_words, is_percent, is_table_header,
                                                      line_pitch, numeric, read_lines, row_text_words, text_words,
                                                      unmarked_words)
from opinionbench.questionnaire.reading.options import column_choice, find_options
from opinionbench.questionnaire.reading.settings import ReaderSettings
from opinionbench.questionnaire.reading.tables import find_stem, header_labels, row_words, stem_text, table_row
from opinionbench.questionnaire.reconcile import expected_percents
from opinionbench.questionnaire.segment import Block
from opinionbench.questionnaire.text import ocr_fold

__all__ = ["ReaderSettings", "read_blocks"]
WORDING_START_MIN_RATIO = 85.0  # words in front that the codebook wording begins with too are wording
CODE_DROP_MIN_RATIO = 70.0  # a printed code in front of wording already anchored: looser than for anchoring
LINE_MIN_RATIO = 60.0  # a line below the first reading less like any part of the wording is not wording
INSTRUCTION_IN_WORDING_RATIO = 80.0  # capitals the codebook wording has too (`YOUR LOCAL COMMUNITY`) stay
STEM_LOOKBACK = 150  # lines above a lettered battery item searched for its stem
HEAD_LINES = 8  # lines below a stem that may hold a table's column heads
CROSSING_MIN_WEIGHT = 10.0  # an anchor this well supported between a stem and its item separates them
SIBLING_STEM_MIN_RATIO = 90.0  # items of one battery: their stems (each split with a neighbour) read alike
MAX_ROUNDS = 8  # anchor choices, each without the anchors under which no options (or a sibling's words) were found


def drop_code(words: list[str], qcode: str, settings: ReaderSettings, wording: str = "") -> list[str]:
    """The wording without the printed code in front (`[POL1DT)`, `J OBTRAIN.`, `OIFF2.`: OCR splits
    and misreads it): up to three words that spell nearly the code, the last closing it; not the
    words the codebook `wording` itself begins with (`REASBACK mention 1`). Of several such runs
    the one spelling the code best (`[GAP21Q26_a]`, not `[GAP21Q26_a] The U.S.`)."""
    want = fold_code(qcode)
    start = ocr_fold(wording)
    best: tuple[float, int] = (0.0, 0)
    for k in (3, 2, 1):
        if len(words) < k:
            continue
        head = ocr_fold(" ".join(words[:k]))
        if start and fuzz.ratio(head, start[:len(head)]) >= WORDING_START_MIN_RATIO:
            continue
        got = fold_code(printed_code("".join(words[:k])))
        closes = words[k - 1][-1:] in ".:])}" or not any(ch.islower() for ch in words[k - 1])
        ratio = 100.0 if got == want else fuzz.ratio(got, want) if got else 0.0
        if (ratio >= settings.code_min_ratio or (closes and ratio >= CODE_DROP_MIN_RATIO)) and ratio > best[0]:
            best = (ratio, k)
    return words[best[1]:]


def read_blocks(
    words: pd.DataFrame,
    hints: dict[str, Hint],
    toplines: dict[str, tuple[list[float], float]] | None = None,
    *,
    settings: ReaderSettings = ReaderSettings(),
) -> list[Block]:
    """One Block per codebook question found on the pages, in printed order."""
    if words.empty or not hints:
        return []
    dpi = int(words["dpi"].iloc[0])
    tgts = targets(hints)
    expected = [x for t in tgts for x in (t.hint.question, t.item) if x]
    lines = read_lines(words, settings, expected=expected)
    scores = anchor_scores(lines, tgts, settings)
    pitch = line_pitch(lines)
    everyone = identities(hints)
    by_code = {i.qcode: i for i in everyone}
    routings = _routings(lines)
    for _ in range(MAX_ROUNDS):  # a question is where its wording and its options are, not its wording alone
        anchors = choose_anchors(scores)
        placed = sorted((a[0], q, a[1]) for q, a in enumerate(anchors) if a is not None)
        weight = {(q, i): w for q, row in enumerate(scores) for i, w, _ in row}
        read, rivals, empty = [], set(), []
        for n, (i, q, how) in enumerate(placed):
            t = tgts[q]
            stop = placed[n + 1][0] if n + 1 < len(placed) else len(lines)
            stop = next((k for k in routings if i < k < stop), stop)  # the next question opens
            labels = list(t.hint.options) + list(t.hint.refusal_options)
            stem_at: list[int] = []
            block = _read_block(lines, i, stop, t, labels, how, toplines or {}, settings, stem_at, pitch)
            coded = weight[(q, i)] >= EXACT_CODE_WEIGHT  # its exact code printed: read, or sent to review
            own = block is not None and _substantive(block, t, settings) and item_printed(t.item, block.wording)
            if block is None or not coded and not own:
                empty.append((q, i))
            elif not coded and rival(by_code[t.qcode], everyone,  # the anchor line as printed: code and all
                                     f"{block.wording} {' '.join(unmarked_words(lines[i]))}",
                                     block.options + block.refusal_options):
                rivals.add((q, i))
            else:
                read.append((q, i, block, stem_at, coded))
        at = {q: i for i, q, _ in placed}
        blocks, intruders = [], []
        for q, i, block, stem_at, coded in read:
            if not coded and _crossed(stem_at, i, q, scores, at, rivals, tgts):
                intruders.append((q, i))
            else:
                block.dpi = dpi
                blocks.append(block)
        rejected = sorted(rivals) + intruders or empty  # another question's lines first: the others' regions change
        if not rejected:
            break
        for q, i in rejected:
            scores[q] = [c for c in scores[q] if c[0] != i]
    return blocks


def _routings(lines: list[TextLine]) -> list[int]:
    """Routing lines (`ASK ALL:`): each opens a question, whether or not its anchor is placed there
    (a battery's stem, its items anchored below), so no block runs on past one and a table
    without percentages ends where the next question begins. (Neither a line reading like
    another question's wording, which an option may, nor a printed code, which a wording may
    mention, `Insert text for VIEWCOMM and PROBSELF`, is a start as surely.)"""
    return [k for k, ln in enumerate(lines) if routing_of(ln.text)]


def _crossed(stem_at: list[int], i: int, q: int, scores: list[list[tuple[int, float, str]]], at: dict[int, int],
             rivals: set[tuple[int, int]], tgts: list[Target]) -> bool:
    """A battery item read below a stem printed apart, with another question's wording or code
    printed between the stem and the item (well supported, and not placed elsewhere or found to be a
    sibling's lines): the item is printed as part of that question (its options), not here."""
    if not stem_at:
        return False
    want = ocr_fold(tgts[q].stem or "")
    for q2, row in enumerate(scores):
        other = tgts[q2]
        if q2 == q or other.stem and fuzz.ratio(ocr_fold(other.stem), want) >= SIBLING_STEM_MIN_RATIO:
            continue
        if any(stem_at[0] < k < i and w >= CROSSING_MIN_WEIGHT and how != "item" and at.get(q2, k) == k
               and (q2, k) not in rivals for k, w, how in row):
            return True
    return False


def _read_block(lines: list[TextLine], i: int, stop: int, t: Target, labels: list[str], how: str,
                toplines: dict[str, tuple[list[float], float]], settings: ReaderSettings,
                stem_at: list[int], pitch: float = 0.0) -> Block | None:
    """The question t anchored on line i, read up to line `stop`; `stem_at` receives the line of a
    battery stem printed apart from the item (above a table or a lettered list); `pitch` is the
    pages' line pitch (`line_pitch`)."""
    anchor = lines[i]
    table = table_row(lines, i, labels) if how == "item" and t.stem else None
    used = [anchor]
    if table is not None:
        heads, values, header_start = table
        stem, stem_line = stem_text(lines, max(0, header_start - 12), header_start, t.stem or "")
        stem_at.append(stem_line)
        item_words = drop_code(row_words(anchor), t.qcode, settings)
        for ln in lines[i + 1:stop]:
            if any(is_percent(w) for w in ln.words) or not content_words(ln) or ln.left <= anchor.left + 2 \
                    or ROUTING.match(ln.words[0]):
                break
            item_words += content_words(ln)
            used.append(ln)
        own = set((t.item or "").split())  # a number OCR merged out of two cells (`18 56` read `1856`) is no item word
        item_words = [w for w in item_words if w in own or not numeric(w)]
        wording = f"{stem} {' '.join(item_words)}".strip()
        options, percents = _heads(heads, labels, settings), values
        kinds = list(range(len(options)))
        routing = _routing(lines, stem_line)
    else:
        region = lines[i + 1:stop]
        found = find_options(labels, region, settings, pitch, above=anchor)
        body = [ln for ln in region[:found.first] if not is_table_header(ln)]
        first_words = drop_code(text_words(anchor), t.qcode, settings, t.hint.question)
        own_words = frozenset(w.strip(".,;:?!()") for w in t.hint.question.split())
        first_words = [w for w in first_words if w in row_text_words(anchor, own_words)]
        if how == "item" and t.item and found.first == len(region):  # a row of a table without percentages
            body = body[:_item_lines(first_words, body, t.item)]
        body_words = [drop_code(row_text_words(ln, own_words), t.qcode, settings)  # an item's code below its stem
                      for ln in body]
        wording = " ".join(trim_specks(wording_words([first_words] + body_words,
                                                     t.hint.question), t.hint.question))
        used += region[:found.last + 1]
        expected = None
        if t.qcode in toplines:
            probs, refusal = toplines[t.qcode]
            expected = expected_percents(probs, refusal) + [100.0 * refusal] * len(t.hint.refusal_options)
        column = column_choice(found.percents, expected)
        options, kinds = found.options, found.labels
        percents = [p[column] if column < len(p) else None for p in found.percents]
        routing = _routing(lines, i)
        if t.stem and t.item and _reads_as_item(wording, t):  # a lettered item below a stem printed once
            stem, stem_line, stem_end = find_stem(lines, i - STEM_LOOKBACK, i, t.stem)
            if not stem and how == "item":
                return None  # an item without its battery's stem above it is another question's text
            wording = f"{stem} {wording}".strip()
            routing = _routing(lines, stem_line) if stem else routing
            stem_at += [stem_line] if stem else []
            if not options and stem:  # a table without percentages: the options are its column heads
                heads_found = header_labels(lines[stem_end:min(i, stem_end + HEAD_LINES)], labels)
                kinds, options = [k for k, _ in heads_found], [h for _, h in heads_found]
                percents = [None] * len(options)
    if not options and how != "item" and t.item:
        below = _read_table_item_below(lines, i, stop, t, labels, toplines, settings, stem_at, pitch)
        if below is not None:
            return below
    n_sub = len(t.hint.options)  # options are told from refusals by the label each one is, not by position
    substantive = [(o, p) for o, p, k in zip(options, percents, kinds) if k < n_sub]
    refusal = [(o, p) for o, p, k in zip(options, percents, kinds) if k >= n_sub]
    confs = [c for ln in used for c in ln.confs]
    on_page = [ln for ln in used if ln.page == anchor.page]
    return Block(
        qcode=t.qcode, routing=routing, wording=" ".join(wording.split()),
        options=[" ".join(o.split()) for o, _ in substantive], percents=[p for _, p in substantive],
        refusal_options=[" ".join(o.split()) for o, _ in refusal], refusal_percents=[p for _, p in refusal],
        page=anchor.page,
        bbox=[min(ln.left for ln in on_page), min(ln.top for ln in on_page),
              max(ln.right for ln in on_page), max(ln.bottom for ln in on_page)],
        confidence=round(sum(confs) / len(confs), 2) if confs else 0.0,
        min_confidence=min(confs) if confs else 0.0,
        ocr_text="\n".join(ln.text for ln in used),
    )


def _item_lines(first_words: list[str], body: list[TextLine], item: str) -> int:
    """How many of the lines below a battery item's first line continue it (a wrapped item): those
    that make the text read more like the item. Without options below it (a table row without
    percentages) nothing else ends the item before the next question's stem."""
    want = ocr_fold(item)
    text, best, used = " ".join(first_words), fuzz.ratio(ocr_fold(" ".join(first_words)), want), 0
    for k, ln in enumerate(body):
        text = f"{text} {' '.join(content_words(ln))}"
        score = fuzz.ratio(ocr_fold(text), want)
        if score <= best:
            break
        best, used = score, k + 1
    return used


def _heads(heads: list[str], labels: list[str], settings: ReaderSettings) -> list[str]:
    """A table's column heads as options: one column per codebook label, in order, so a head OCR
    lost or garbled beyond recognition (`ata` for `None at all`, nothing at all) over a column of
    percentages stands for the label of its column, unless it reads as another label."""
    out = []
    for k, head in enumerate(heads):
        scores = [fuzz.ratio(ocr_fold(head), ocr_fold(label)) for label in labels]
        best = max(range(len(labels)), key=lambda n: scores[n])
        lost = scores[k] < settings.option_min_ratio and (best == k or scores[best] < settings.option_min_ratio)
        out.append(labels[k] if lost and k < len(labels) else head)
    return out


def _substantive(block: Block, t: Target, settings: ReaderSettings) -> bool:
    """Some of the question's own option labels are printed, not only a refusal (`Refused`) that
    every question has: options are what tell questions with one wording apart."""
    labels = [ocr_fold(label) for label in t.hint.options]
    return any(fuzz.ratio(ocr_fold(o), label) >= settings.option_min_ratio
               for o in block.options + block.refusal_options for label in labels)


def _reads_as_item(wording: str, t: Target) -> bool:
    """The printed text reads as the battery item alone, not as stem and item."""
    text = ocr_fold(wording)
    return fuzz.ratio(text, ocr_fold(t.item or "")) > fuzz.ratio(text, ocr_fold(t.hint.question))


def wording_words(lines: list[list[str]], question: str) -> list[str]:
    """A question's printed words without what is not its wording: interviewer instructions
    (`[RANDOMIZE ITEMS]`, `INTERVIEWER: DO NOT READ`, `(VOL.)`) and lines that read like no part of
    the codebook wording (column heads `Current Previous`), unless the codebook has them too."""
    want = ocr_fold(question)
    out: list[str] = []
    for k, words in enumerate(lines):
        text = ocr_fold(" ".join(words))
        if not words:
            continue
        if k and (fuzz.partial_ratio(text, want) < LINE_MIN_RATIO or _instruction(words) and
                  fuzz.partial_ratio(text, want) < INSTRUCTION_IN_WORDING_RATIO):
            continue
        out += words
    kept: list[str] = []
    k = 0
    while k < len(out):  # bracketed instructions inside a line
        w = out[k]
        if w[:1] in "[(" and _instruction([w]):
            e = k
            while e < len(out) and not out[e].rstrip(".,;:")[-1:] in "])" and e - k < 12:
                e += 1
            run = out[k:e + 1]
            if _instruction(run) and fuzz.partial_ratio(_bare(" ".join(run)), _bare(question)) < INSTRUCTION_IN_WORDING_RATIO:
                k = e + 1
                continue
        kept.append(w)
        k += 1
    return kept


LOST_NUMBERING = re.compile(r"^[qQ]\S{0,4}[.:]$")  # a question number OCR misread (`Qié.`, `Qti7.`)


def trim_specks(words: list[str], question: str) -> list[str]:
    """The wording without short tokens at either end that are no word of the codebook wording:
    a check box, blur or speckle read as `Oe`, `ce`, `oo,`, a question number read as `Q?.`."""
    wording = [w.strip(".,;:?!()[]\"'") for w in ocr_fold(question).split()]
    own = set(wording)

    def speck(w: str, end_word: str) -> bool:
        short = len(w) <= SPECK_CHARS or bool(LOST_NUMBERING.match(w))
        bare = ocr_fold(w).strip(".,;:?!()[]\"'")
        # the wording's own first/last word misread (`{f` for `If`) is wording, not a speck
        misread = len(bare) >= 2 and Levenshtein.distance(bare.lower(), end_word.lower()) <= 1
        return short and bare not in own and not misread

    while words and wording and speck(words[0], wording[0]):
        words = words[1:]
    while words and wording and speck(words[-1], wording[-1]):
        words = words[:-1]
    return words


def _bare(text: str) -> str:
    """Letters and digits only, folded: `(FTEM FROM DIFF 1),` against `[ITEM FROM DIFF1],`."""
    return "".join(ch for ch in ocr_fold(text) if ch.isalnum())


def _instruction(words: list[str]) -> bool:
    """Capitals only (`[READ LIST]`, `ASK IF FORM 1:`, `(VOL.)`): how instructions are printed."""
    letters = [ch for w in words for ch in w if ch.isalpha()]
    return len(letters) >= 3 and not any(ch.islower() for ch in letters)


def _read_table_item_below(lines: list[TextLine], i: int, stop: int, t: Target, labels: list[str],
                           toplines: dict[str, tuple[list[float], float]], settings: ReaderSettings,
                           stem_at: list[int], pitch: float) -> Block | None:
    """A battery item anchored on the stem above its table (the stem and the first item read like
    the whole wording): its row is further down, the one whose text reads as the item."""
    want = ocr_fold(t.item or "")
    rows = [j for j in range(i + 1, stop) if table_row(lines, j, labels) is not None
            and fuzz.ratio(ocr_fold(" ".join(content_words(lines[j]))), want) >= settings.option_min_ratio]
    if not rows:
        return None
    j = max(rows, key=lambda r: fuzz.ratio(ocr_fold(" ".join(content_words(lines[r]))), want))
    return _read_block(lines, j, stop, t, labels, "item", toplines, settings, stem_at, pitch)


def _routing(lines: list[TextLine], i: int) -> str | None:
    """The routing line (`ASK ALL:`) just above line i, if there is one."""
    for ln in lines[max(0, i - 2):i][::-1]:
        routed = routing_of(ln.text)
        if routed:
            return routed
    return None
