"""`logprobs`: the next-token probabilities of the option letters at the answer position.

A letter may come as `A` or ` A`; `combine="sum"` adds the two (SubPOP), `combine="max"` keeps
the larger (OpinionQA). The letters' probabilities are renormalised over the options, and the
mass that fell on any other token is recorded as `out_of_option_mass`.

API backends return only the top-k tokens. An option letter absent from them gets OpinionQA's
fill rule: min(least listed probability, leftover mass / number of missing options), where the
leftover is 1 minus the listed probabilities' sum; it can be no likelier than what was listed,
and the missing options cannot share more than what is left.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from opinionbench.elicit import methods
from opinionbench.elicit.base import (Capabilities, Item, Method, MethodSettings, Result, Settings, failed, orders_for,
                                      question_prompt)
from opinionbench.models.base import Backend, Failure, NextToken, Prompt
from opinionbench.prompting import letters, to_original

TEMPLATE = "question_logprobs.txt"


class LogprobsSettings(Settings):
    """params.yaml `infer.logprobs:` (`serialization_alias`: the knob's name in the request hash, base.py)."""

    combine: Literal["sum", "max"] = Field("sum", serialization_alias="combine",
                                          description="'A' and ' A' letter tokens: sum (SubPOP) or max (OpinionQA)")


def candidates(n: int) -> list[str]:
    return [v for letter in letters(n) for v in (letter, f" {letter}")]


def letter_probabilities(answer: NextToken, n: int, combine: str) -> tuple[np.ndarray, float]:
    """(probabilities over the n letters, renormalised; mass outside them) from one NextToken."""
    variants: dict[str, list[float]] = {letter: [] for letter in letters(n)}
    for token, logprob in answer.logprobs.items():
        letter = token.strip()
        if letter in variants and token in (letter, f" {letter}"):
            variants[letter].append(math.exp(logprob))
    reduce = sum if combine == "sum" else max
    raw = np.array([reduce(v) if v else math.nan for v in variants.values()], dtype=float)
    if np.isnan(raw).any():
        if answer.exhaustive:
            raw = np.nan_to_num(raw, nan=0.0)  # a letter that is not a single token has no mass here
        else:
            listed = [math.exp(lp) for lp in answer.logprobs.values()]
            missing = np.isnan(raw)
            leftover = max(0.0, 1.0 - sum(listed))
            raw[missing] = min(min(listed), leftover / int(missing.sum())) if listed else 0.0
    in_options = float(raw.sum())
    # the mass on the options counts every variant ("A" and " A"), whatever `combine` keeps;
    # a letter filled by the top-k rule counts with its filled value
    on_letters = sum(sum(v) if v else float(r) for v, r in zip(variants.values(), raw))
    if in_options <= 0:
        raise ValueError("no probability on any option letter")
    return raw / in_options, max(0.0, 1.0 - on_letters)


def prompts(item: Item, settings: MethodSettings) -> list[Prompt]:
    return [question_prompt(item, order, TEMPLATE) for order in orders_for(item, settings)]


def run(backend: Backend, items: Sequence[Item], settings: MethodSettings) -> list[Result]:
    per_item = [prompts(item, settings) for item in items]
    flat = [p for ps in per_item for p in ps]
    n_max = max(len(item.options) for item in items)
    answers = iter(backend.next_token_logprobs(flat, candidates(n_max)))
    combine = settings.of(LogprobsSettings).combine
    results = []
    for item, ps in zip(items, per_item):
        orders = orders_for(item, settings)
        got = [next(answers) for _ in ps]
        bad = next((a for a in got if isinstance(a, Failure)), None)
        if bad is not None:
            results.append(failed(bad.error))
            continue
        try:
            per_order = [letter_probabilities(a, len(item.options), combine) for a in got]
        except ValueError as exc:
            results.append(failed(f"{item.qkey}: {exc}", json.dumps([a.logprobs for a in got])))
            continue
        mapped = [to_original(p, order) for (p, _), order in zip(per_order, orders)]
        probs = np.mean(mapped, axis=0)
        raw = json.dumps({"orders": orders, "letter_probs": [[round(float(x), 6) for x in p] for p, _ in per_order]})
        results.append(Result(list(probs / probs.sum()), float(np.mean([m for _, m in per_order])), raw))
    return results


METHOD = methods.register("logprobs")(Method(
    prompts, run, templates=(TEMPLATE,), settings=LogprobsSettings, capabilities=Capabilities(calibratable=True)))
