"""`sequence`: sample answers and count them.

`samples` mode draws N independent answers to the plain multiple-choice prompt; `letters`
mode asks for one reply of N letters (as in the distributional-alignment paper). Answers
that are not an option letter are counted as out-of-option; a question with no valid answer
at all is a failed result, its replies kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from opinionbench.elicit import methods
from opinionbench.elicit.base import (Capabilities, Item, Method, MethodSettings, Result, Settings, failed, orders_for,
                                      question_prompt)
from opinionbench.models.base import Backend, Failure, GenerationRequest, Prompt
from opinionbench.prompting import letters, to_original

TEMPLATES = {"samples": "question_sequence.txt", "letters": "question_sequence_letters.txt"}


class SequenceSettings(Settings):
    """params.yaml `infer.sequence:` (`serialization_alias`: the knob's name in the request hash, base.py)."""

    n: int = Field(10, ge=1, le=200, serialization_alias="sequence_n",
                   description="answers sampled (samples) or letters asked for (letters)")
    mode: Literal["samples", "letters"] = Field("samples", serialization_alias="sequence_mode",
                                                description="samples: n sampled answers; letters: one reply of n letters")
    temperature: float = Field(1.0, gt=0, le=2, serialization_alias="temperature", description="sampling temperature")


def first_letter(reply: str, n: int) -> str | None:
    """The option letter a single answer names ("B", "B.", "(B) ...", "Answer: B"), else None."""
    m = re.match(r"\s*(?:answer\s*[:\-]?\s*)?\(?([A-Z])\b", reply, flags=re.IGNORECASE)
    if m and m.group(1).upper() in letters(n) and (m.group(1).isupper() or len(reply.strip()) == 1):
        return m.group(1).upper()
    return None


def letter_sequence(reply: str, n: int) -> list[str | None]:
    """Each whitespace/comma-separated token of a letters reply: its letter, or None."""
    tokens = [t for t in re.split(r"[\s,;]+", reply.strip()) if t]
    return [t.strip(".)(").upper() if t.strip(".)(").upper() in letters(n) and len(t.strip(".)(")) == 1 else None
            for t in tokens]


def prompts(item: Item, settings: MethodSettings) -> list[Prompt]:
    own = settings.of(SequenceSettings)
    return [question_prompt(item, order, TEMPLATES[own.mode], n=own.n) for order in orders_for(item, settings)]


def _seed(prompt: Prompt, base: int) -> int:
    return (int(prompt.digest()[:8], 16) + base) % (2**31)


def run(backend: Backend, items: Sequence[Item], settings: MethodSettings) -> list[Result]:
    per_item = [prompts(item, settings) for item in items]
    own = settings.of(SequenceSettings)
    letters_mode = own.mode == "letters"
    requests = [
        GenerationRequest(p, max_tokens=3 * own.n + 8 if letters_mode else 4,
                          temperature=own.temperature, n=1 if letters_mode else own.n,
                          seed=_seed(p, settings.seed))
        for ps in per_item for p in ps
    ]
    replies = iter(backend.generate(requests))
    results = []
    for item, ps in zip(items, per_item):
        n = len(item.options)
        got = [next(replies) for _ in ps]
        bad = next((r for r in got if isinstance(r, Failure)), None)
        if bad is not None:
            results.append(failed(bad.error))
            continue
        mapped, invalid, total = [], 0, 0
        for reply, order in zip(got, orders_for(item, settings)):
            answers = letter_sequence(reply[0], n)[: own.n] if letters_mode else [first_letter(r, n) for r in reply]
            counts = np.array([sum(a == letter for a in answers) for letter in letters(n)], dtype=float)
            invalid += sum(a is None for a in answers)
            total += len(answers)
            if counts.sum() > 0:
                mapped.append(to_original(counts / counts.sum(), order))
        raw = json.dumps([r for r in got])
        if not mapped or len(mapped) < len(got):
            results.append(failed(f"{item.qkey}: no answer was an option letter in at least one option order", raw))
            continue
        probs = np.mean(mapped, axis=0)
        results.append(Result(list(probs / probs.sum()), invalid / max(total, 1), raw))
    return results


METHOD = methods.register("sequence")(Method(
    prompts, run, templates=tuple(TEMPLATES.values()), settings=SequenceSettings,
    capabilities=Capabilities(free_text=True, k2s_role="simulation")))
