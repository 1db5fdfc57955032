"""`verbalized`: the model is asked for a JSON distribution over the option letters.

Parsing is forgiving about form (code fences, prose around the object, percentages, "A: 30%"
lines, a bare list) and strict about content: every letter present exactly once, numbers
non-negative, a positive total. Anything else is a failed result with the raw reply kept —
never silently replaced by a default. Servers that support it (openai backend) also get the
JSON schema as `response_format`, so the reply is well-formed by construction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from opinionbench.elicit import methods
from opinionbench.elicit.base import (Capabilities, Item, Method, MethodSettings, Result, Settings, failed, orders_for,
                                      question_prompt)
from opinionbench.models.base import Backend, Failure, GenerationRequest, Prompt
from opinionbench.prompting import letters, to_original

TEMPLATE = "question_verbalized.txt"


class VerbalizedSettings(Settings):
    """params.yaml `infer.verbalized:` (`serialization_alias`: the knob's name in the request hash, base.py)."""

    max_tokens: int = Field(80, ge=8, le=2048, serialization_alias="max_tokens",
                            description="reply budget of the stated distribution")


class ReplyError(ValueError):
    """A reply that cannot be read as a distribution over the letters."""


def schema(n: int) -> dict:
    props = {letter: {"type": "number", "minimum": 0, "maximum": 1} for letter in letters(n)}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ReplyError(f"not a number: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(%?)\s*", value)
        if m:
            return float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    raise ReplyError(f"not a number: {value!r}")


def _from_json(text: str) -> dict | list | None:
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    decoder = json.JSONDecoder()
    for i in range(start, len(text)):
        if text[i] in "{[":
            try:
                return decoder.raw_decode(text, i)[0]
            except json.JSONDecodeError:
                continue
    return None


def parse_distribution(text: str, n: int) -> np.ndarray:
    """Probabilities over the n letters (renormalised) from a reply; ReplyError if it has none."""
    wanted = letters(n)
    found = _from_json(text)
    if isinstance(found, dict):
        keys = {str(k).strip().upper().rstrip(".)"): v for k, v in found.items()}
        missing = [letter for letter in wanted if letter not in keys]
        extra = [k for k in keys if k not in wanted]
        if missing or extra:
            raise ReplyError(f"letters missing {missing} / unexpected {extra}")
        values = np.array([_number(keys[letter]) for letter in wanted])
    elif isinstance(found, list):
        if len(found) != n:
            raise ReplyError(f"a list of {len(found)} numbers for {n} options")
        values = np.array([_number(v) for v in found])
    else:
        pairs = re.findall(r"\b([A-Z])\s*[:=)\.-]\s*(\d+(?:\.\d+)?)\s*(%?)", text)
        table: dict[str, float] = {}
        for letter, number, pct in pairs:
            if letter in table:
                raise ReplyError(f"letter {letter} given twice")
            table[letter] = float(number) / (100.0 if pct else 1.0)
        if sorted(table) != wanted:
            raise ReplyError("no JSON object and no 'A: x' pairs covering every letter")
        values = np.array([table[letter] for letter in wanted])
    if (values < 0).any() or not np.isfinite(values).all():
        raise ReplyError("negative or non-finite probability")
    total = values.sum()
    if total <= 0:
        raise ReplyError("probabilities sum to 0")
    if values.max() > 1.0 and abs(total - 100.0) < 1.0:  # percentages without the % sign
        values = values / 100.0
    return values / values.sum()


def prompts(item: Item, settings: MethodSettings) -> list[Prompt]:
    n = len(item.options)
    example = json.dumps({letter: round(1.0 / n, 2) for letter in letters(n)})
    return [question_prompt(item, order, TEMPLATE, example=example) for order in orders_for(item, settings)]


def run(backend: Backend, items: Sequence[Item], settings: MethodSettings) -> list[Result]:
    per_item = [prompts(item, settings) for item in items]
    own = settings.of(VerbalizedSettings)
    requests = [GenerationRequest(p, max_tokens=own.max_tokens, temperature=0.0, seed=settings.seed,
                                  json_schema=schema(len(item.options)))
                for item, ps in zip(items, per_item) for p in ps]
    replies = iter(backend.generate(requests))
    results = []
    for item, ps in zip(items, per_item):
        got = [next(replies) for _ in ps]
        bad = next((r for r in got if isinstance(r, Failure)), None)
        if bad is not None:
            results.append(failed(bad.error))
            continue
        texts = [r[0] for r in got]
        raw = json.dumps(texts) if len(texts) > 1 else texts[0]
        try:
            dists = [parse_distribution(t, len(item.options)) for t in texts]
        except ReplyError as exc:
            results.append(failed(f"{item.qkey}: reply is not a distribution over the options ({exc})", raw))
            continue
        probs = np.mean([to_original(d, o) for d, o in zip(dists, orders_for(item, settings))], axis=0)
        results.append(Result(list(probs / probs.sum()), raw_reply=raw))
    return results


METHOD = methods.register("verbalized")(Method(
    prompts, run, templates=(TEMPLATE,), settings=VerbalizedSettings,
    capabilities=Capabilities(free_text=True, states_distribution=True, k2s_role="knowledge")))
