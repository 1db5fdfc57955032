"""Does a question wording look like English text? Dictionary-word share and OCR debris share.

Why two numbers: OCR of a scanned questionnaire fails in two ways, misread words ("tbe
natlon's ecouomy") and stray glyphs from rules, stains and checkboxes ("| ~ ¬ »"). The first
lowers the share of dictionary words, the second raises the share of debris characters. The
dictionary is the shipped `english_words.txt.gz` (Debian wamerican, SCOWL 50, ~102k words;
regenerate with scripts/make_wordlist.py), so results never depend on the machine.
"""

from __future__ import annotations

import gzip
import re
from functools import lru_cache
from importlib import resources

TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
# Characters a typeset question may contain; anything else in a wording is treated as debris.
# Braces, '=' and '^' are Pew's programming notation for piped text ("{Joe Biden_Donald Trump}").
TEXT_CHARS = re.compile(r"[\w\s.,;:!?'\"()\[\]{}=^\-–—/%$&*+#@…]")
QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    data = resources.files("opinionbench.validation").joinpath("english_words.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def _known(token: str, words: frozenset[str]) -> bool:
    if token in words:
        return True
    if token.endswith("'s") and token[:-2] in words:  # possessives of names and acronyms
        return True
    return token.replace("'", "") in words


def word_share(text: str) -> float:
    """Share of word tokens found in the dictionary (0.0 for text without any word)."""
    tokens = TOKEN.findall(str(text).translate(QUOTES))
    if not tokens:
        return 0.0
    words = english_words()
    return sum(_known(t.lower(), words) for t in tokens) / len(tokens)


def debris_share(text: str) -> float:
    """Share of non-space characters that a typeset question would not contain."""
    chars = [c for c in str(text).translate(QUOTES) if not c.isspace()]
    if not chars:
        return 0.0
    return sum(not TEXT_CHARS.match(c) for c in chars) / len(chars)
