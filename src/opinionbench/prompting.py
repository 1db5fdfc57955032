"""How options and distributions are written in prompts: letters, option orders, the JSON of a distribution.

Why a module of its own, below both elicit/ and steering/: the methods letter the asked
question's options, and few-shot steering writes other questions' options and true
distributions the same way, so the two must share one definition without importing each other.

Models prefer the label "A" whatever it labels. Presenting the options in k cyclic orders
(shift 0..k-1) and averaging the distributions mapped back to the original order removes
that label bias to first order, and the per-order results (kept in `raw_reply`) measure it.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence

import numpy as np

from opinionbench.errors import OpinionBenchError

LETTERS = string.ascii_uppercase


class QuestionError(OpinionBenchError):
    """A question cannot be asked as a multiple-choice item (e.g. fewer than two options)."""


def check_options(qkey: str, options: Sequence[str]) -> None:
    if len(options) < 2:
        raise QuestionError(f"{qkey}: has {len(options)} option(s); at least 2 are needed to elicit a distribution")
    if len(options) > len(LETTERS):
        raise QuestionError(f"{qkey}: has {len(options)} options; at most {len(LETTERS)} can be lettered")


def cyclic_orders(n_options: int, k: int) -> list[list[int]]:
    """k cyclic shifts of range(n_options) (capped at n_options): order[j] = original index shown as letter j."""
    k = max(1, min(k, n_options))
    return [[(j + shift) % n_options for j in range(n_options)] for shift in range(k)]


def letters(n: int) -> list[str]:
    return list(LETTERS[:n])


def format_options(options: Sequence[str], order: Sequence[int]) -> str:
    return "\n".join(f"{LETTERS[j]}. {options[i]}" for j, i in enumerate(order))


def to_original(letter_probs: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Probabilities per shown letter -> probabilities per option in the original order."""
    out = np.zeros(len(order))
    out[list(order)] = letter_probs
    return out


def distribution_json(probs: Sequence[float]) -> str:
    return json.dumps({LETTERS[j]: round(float(p), 2) for j, p in enumerate(probs)})
