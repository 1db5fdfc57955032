"""What every elicitation method shares: the item asked, its prompts (one per option order), the result.

A method turns items (a question + a steering context) into backend requests and the
backend's answers into a distribution over the options in their ORIGINAL order; a reply that
cannot be read becomes a failed result with its error and the raw reply, never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from opinionbench.models.base import Backend, Prompt
from opinionbench.prompting import cyclic_orders, format_options, letters
from opinionbench.steering.base import Context
from opinionbench.steering.templates import fill


@dataclass(frozen=True)
class MethodSettings:
    """The knobs of params.yaml `infer:` that change what a method computes (all go into the request hash)."""

    combine: str = "sum"            # logprobs: "A" and " A" combined by sum (SubPOP) or max (OpinionQA)
    option_orders: int = 1          # cyclic option orders averaged
    sequence_n: int = 10            # sequence: answers sampled (or letters asked for)
    sequence_mode: str = "samples"  # "samples": N sampled answers; "letters": one reply of N letters
    temperature: float = 1.0        # sequence sampling temperature
    max_tokens: int = 80            # verbalized reply budget
    seed: int = 0


@dataclass(frozen=True)
class Item:
    qkey: str
    attribute: str
    group: str
    question: str
    options: tuple[str, ...]
    context: Context


@dataclass
class Result:
    probs: list[float]
    out_of_option_mass: float = math.nan
    raw_reply: str | None = None
    failed: bool = False
    error: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """What the runner needs of a method; registered by name in `opinionbench.elicit.methods`.

    `prompts` must be exactly what `run` sends: the request hash is taken over them, so a
    cached result is reused only for the same prompts. `templates` are hashed into every
    prediction (`template_hash`), in this order.
    """

    prompts: Callable[[Item, MethodSettings], list[Prompt]]
    run: Callable[[Backend, Sequence[Item], MethodSettings], list[Result]]
    templates: tuple[str, ...]


def failed(error: str, raw_reply: str | None = None) -> Result:
    return Result(probs=[], raw_reply=raw_reply, failed=True, error=error)


def question_prompt(item: Item, order: Sequence[int], template: str, **extra: object) -> Prompt:
    shown = letters(len(order))
    user = fill(template, question=item.question, options=format_options(item.options, order),
                population=item.context.population, letters=", ".join(shown), **extra)
    return Prompt((("system", item.context.system), ("user", user)))


def orders_for(item: Item, settings: MethodSettings) -> list[list[int]]:
    return cyclic_orders(len(item.options), settings.option_orders)
