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
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from opinionbench.questionnaire.correct.base import Hint
from opinionbench.questionnaire.text import ocr_fold

WORD = re.compile(r"[a-z0-9']+")
MIN_WORD_CHARS = 3  # `a`, `of`, `or`: too short to tell questions apart once OCR has read them
WORD_MIN_RATIO = 80.0  # a printed word is one of the distinguishing words (OCR noise allowed)
NEAR_MIN_RATIO = 50.0  # only questions whose words largely overlap are candidates for confusion
BARE_RIVAL_MIN_SHARE = 0.5  # a question without words of its own (`The U.S.`): the other's must be plainly there
# Siblings whose wordings differ only in short words (`look UP to` / `look DOWN on`) or in words
# both print elsewhere (`assault IN THE WORKPLACE today` / `assault today`): the printed wording
# is the other's when it is this many characters closer to the other's whole wording than to its own
CLOSER_MIN_CHARS = 4
WHOLE_MIN_SHARE = 0.9  # ... and only a whole printed wording counts: one cut by a page break is not
MAX_WORDS_APART = 1  # ... and only between wordings no more than this many long words apart


NUMBER = re.compile(r"\b\d+\b")


def words_of(text: str) -> frozenset[str]:
    """The folded words of a text worth comparing (three characters or more), and its numbers
    however short (`REASSTAY mention 1` / `... mention 3`: the number is all that differs)."""
    words = {w for w in WORD.findall(ocr_fold(text)) if len(w) >= MIN_WORD_CHARS}
    return frozenset(words | set(NUMBER.findall(text)))


@dataclass(frozen=True)
class Identity:
    """What a codebook question prints, as a set of words: its wording and its substantive options."""

    qcode: str
    text: str
    words: frozenset[str]
    wording_words: frozenset[str]  # the wording's alone: `not` in `DO NOT HAVE CHILDREN` and in an option
    wording: str = ""  # the folded wording itself, for siblings no distinguishing word tells apart


def identities(hints: dict[str, Hint]) -> list[Identity]:
    out = []
    for code, hint in hints.items():
        text = " ".join([hint.question, *hint.options])
        out.append(Identity(code, ocr_fold(text), words_of(text), words_of(hint.question), ocr_fold(hint.question)))
    return out


def _present(wanted: frozenset[str], printed: tuple[str, ...]) -> int:
    """How many of the wanted words are printed (each up to OCR noise)."""
    if not printed:
        return 0
    return sum(process.extractOne(w, printed, scorer=fuzz.ratio, score_cutoff=WORD_MIN_RATIO) is not None
               for w in wanted)


def _present_apart(mine: frozenset[str], theirs: frozenset[str], printed: tuple[str, ...]) -> tuple[int, int]:
    """How many of each question's own words are printed, each printed word counting for the one
    word of either set it reads most like (`woman's` is `woman's`, not also `man's`)."""
    both = list(mine | theirs)
    found: set[str] = set()
    for word in printed:
        best = process.extractOne(word, both, scorer=fuzz.ratio, score_cutoff=WORD_MIN_RATIO) if both else None
        if best is not None:
            found.add(best[0])
    return len(found & mine), len(found & theirs)


@lru_cache(maxsize=4096)
def _near(a: str, b: str) -> bool:
    return fuzz.token_set_ratio(a, b) >= NEAR_MIN_RATIO


def rival(own: Identity, everyone: list[Identity], wording: str, options: list[str]) -> str | None:
    """The code of another question whose distinguishing words the block prints more of than
    `own`'s (a sibling's block), or None when the block is `own`'s as far as words can tell."""
    printed = tuple(words_of(" ".join([wording, *options])))
    printed_wording = tuple(words_of(wording))
    for other in _siblings(own, everyone):
        mine, theirs, seen = own.words - other.words, other.words - own.words, printed
        if not mine and not theirs:  # the same words in all: those of the wordings alone tell them apart
            mine, theirs = own.wording_words - other.wording_words, other.wording_words - own.wording_words
            seen = printed_wording
        if not theirs:
            continue
        got_mine, got_theirs = _present_apart(mine, theirs, seen)
        share = got_theirs / len(theirs)
        if got_theirs > got_mine and share > (got_mine / len(mine) if mine else 0.0) \
                and (mine or share >= BARE_RIVAL_MIN_SHARE):
            return other.qcode
    return _closer_sibling(own, everyone, ocr_fold(wording))


def _siblings(own: Identity, everyone: list[Identity]) -> Iterator[Identity]:
    """The other questions whose texts are near `own`'s: those a block printed for one could be
    mistaken for (`rival`, `_closer_sibling`)."""
    return (other for other in everyone if other.qcode != own.qcode and _near(own.text, other.text))


def _closer_sibling(own: Identity, everyone: list[Identity], printed: str) -> str | None:
    """A sibling whose whole wording the printed one is plainly closer to than to `own`'s, where
    no distinguishing word of three letters or more tells them apart."""
    if not own.wording:
        return None
    mine = Levenshtein.distance(printed, own.wording)
    for other in _siblings(own, everyone):
        if not other.wording or len(own.wording_words ^ other.wording_words) > MAX_WORDS_APART:
            continue
        if len(printed) < WHOLE_MIN_SHARE * max(len(own.wording), len(other.wording)):
            continue
        if Levenshtein.distance(printed, other.wording) + CLOSER_MIN_CHARS <= mine:
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
