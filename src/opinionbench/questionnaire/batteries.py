"""Batteries: questions that share a stem ("How much do you worry about ...? Losing your job").

The codebook repeats the stem in every item's label; a questionnaire may print it once above a
table of items. Both the renderer's matrix style and the reader need to tell stem from item.
"""

from __future__ import annotations

STEM_ENDS = ("? ", ": ", ". ", "... ")
MIN_STEM_CHARS = 15


def split_stem(wordings: list[str]) -> tuple[str, list[str]] | None:
    """The shared stem of several wordings (their common prefix cut at a sentence end) and the
    items after it; None when they share no such stem or an item would be empty."""
    if len(wordings) < 2:
        return None
    prefix = wordings[0]
    for w in wordings[1:]:
        i = 0
        while i < min(len(prefix), len(w)) and prefix[i] == w[i]:
            i += 1
        prefix = prefix[:i]
    cut = max(prefix.rfind(end) + len(end) if end in prefix else -1 for end in STEM_ENDS)
    if cut < MIN_STEM_CHARS:
        return None
    items = [w[cut:].strip() for w in wordings]
    if any(not item for item in items):
        return None
    return prefix[:cut].strip(), items
