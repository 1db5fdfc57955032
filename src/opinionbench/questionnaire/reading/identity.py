"""Whose question a read block is: decided by the words that tell codebook questions apart.

Two codebook questions may share almost all their words: sibling batteries with the same items
and stems differing in one word (`... MEN in politics` / `... WOMEN in politics`), questions
with the same wording and different options (`Please choose the statement that comes closer
to your own views`), an item printed as another question's option. Overall similarity cannot
tell them apart reliably once OCR has added its noise, but their distinguishing words can: a
block is this question's only if it prints at least as many of this question's own words (those
the other question lacks) as of the other question's own words. A block whose printed words are
another question's is not this question's, so a codebook question that is not printed is never
claimed on its sibling's lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.text import ocr_fold

WORD = re.compile(r"[a-z0-9']+")
MIN_WORD_CHARS = 3  # `a`, `of`, `or`: too short to tell questions apart once OCR has read them
WORD_MIN_RATIO = 80.0  # a printed word is one of the distinguishing words (OCR noise allowed)
NEAR_MIN_RATIO = 50.0  # only questions whose words largely overlap are candidates for confusion


def words_of(text: str) -> frozenset[str]:
    """The folded words of a text worth comparing (three characters or more)."""
    return frozenset(w for w in WORD.findall(ocr_fold(text)) if len(w) >= MIN_WORD_CHARS)


@dataclass(frozen=True)
class Identity:
    """What a codebook question prints, as a set of words: its wording and its substantive options."""

    qcode: str
    text: str
    words: frozenset[str]


def identities(hints: dict[str, Hint]) -> list[Identity]:
    out = []
    for code, hint in hints.items():
        text = " ".join([hint.question, *hint.options])
        out.append(Identity(code, ocr_fold(text), words_of(text)))
    return out


def _present(wanted: frozenset[str], printed: tuple[str, ...]) -> int:
    """How many of the wanted words are printed (each up to OCR noise)."""
    if not printed:
        return 0
    return sum(process.extractOne(w, printed, scorer=fuzz.ratio, score_cutoff=WORD_MIN_RATIO) is not None
               for w in wanted)


@lru_cache(maxsize=4096)
def _near(a: str, b: str) -> bool:
    return fuzz.token_set_ratio(a, b) >= NEAR_MIN_RATIO


def rival(own: Identity, everyone: list[Identity], wording: str, options: list[str]) -> str | None:
    """The code of another question whose distinguishing words the block prints more of than
    `own`'s (a sibling's block), or None when the block is `own`'s as far as words can tell."""
    printed_words = words_of(" ".join([wording, *options]))
    printed = tuple(printed_words)
    for other in everyone:
        if other.qcode == own.qcode or other.words == own.words or not _near(own.text, other.text):
            continue
        mine, theirs = own.words - other.words, other.words - own.words
        if not theirs:
            continue
        got_mine, got_theirs = _present(mine, printed), _present(theirs, printed)
        if got_theirs > got_mine and got_theirs / len(theirs) > (got_mine / len(mine) if mine else 0.0):
            return other.qcode
    return None


ITEM_MIN_SHARE = 0.5


def item_printed(item: str | None, wording: str) -> bool:
    """A battery item's own words (at least half of them) are in the block's wording: its stem
    alone, printed once above all the items, is no item's."""
    wanted = words_of(item or "")
    if not wanted:
        return True
    return _present(wanted, tuple(words_of(wording))) >= ITEM_MIN_SHARE * len(wanted)
