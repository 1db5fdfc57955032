"""What every elicitation method shares: the item asked, its prompts (one per option order), the result.

A method turns items (a question + a steering context) into backend requests and the
backend's answers into a distribution over the options in their ORIGINAL order; a reply that
cannot be read becomes a failed result with its error and the raw reply, never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opinionbench.models.base import Backend, Prompt
from opinionbench.prompting import cyclic_orders, format_options, letters
from opinionbench.steering.base import Context
from opinionbench.steering.templates import fill


class Settings(BaseModel):
    """A method's own knobs, params.yaml `infer.<method>:` (as a backend has `BackendSettings`).

    A method module subclasses this with its fields and names the class in its `Method`; the
    field's name is its name everywhere: params.yaml, the predictions metadata, MLflow.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)  # a misspelt knob is an error, not ignored


S = TypeVar("S", bound=Settings)


class MethodSettings(Settings):
    """What a method runs with: the knobs every method reads (params.yaml `infer.<knob>`) and, as
    extra keyword arguments, methods' own settings by method name (`infer.<method>.<knob>`):
    `MethodSettings(option_orders=1, sequence=SequenceSettings(n=3))`. A method not given uses
    its class's defaults (`of`).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    option_orders: int = Field(2, ge=1, le=26, description="cyclic option orders averaged (label-bias control)")
    seed: int = Field(0, description="seed of generated replies")

    @model_validator(mode="after")
    def _sections_are_settings(self) -> MethodSettings:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, Settings):
                raise ValueError(f"{name}: a method's settings must be its Settings instance, got {value!r}")
        return self

    def sections(self) -> dict[str, Settings]:
        """The methods' own settings given, by method name."""
        return dict(self.model_extra or {})

    def of(self, cls: type[S]) -> S:
        """The given settings of class `cls` (a method's own class), else its defaults."""
        return next((s for s in self.sections().values() if type(s) is cls), None) or cls()

    def recorded(self, method: str, cls: type[Settings]) -> dict[str, object]:
        """The knobs of one method's run under their params.yaml names, as the predictions
        metadata and MLflow record them: `infer.option_orders`, `infer.<method>.<knob>`."""
        shared = {f"infer.{k}": v for k, v in self.model_dump(include=set(MethodSettings.model_fields)).items()}
        return shared | {f"infer.{method}.{k}": v for k, v in self.of(cls).model_dump().items()}

    def request_key(self, method: str, classes: Mapping[str, type[Settings]]) -> dict[str, object]:
        """What the request hash of `method`'s cells holds of the settings: the shared knobs and
        the method's own, a knob under its params path (`sequence.n`), flat.

        The knobs methods had before each owned its settings carry a `serialization_alias`: the
        hash holds those under that name for every method in `classes`, as it did then, so the
        caches written then stay valid. A knob without one enters only its own method's hash.
        """
        key: dict[str, object] = self.model_dump(include=set(MethodSettings.model_fields))
        for name, cls in classes.items():
            own = self.of(cls)
            for field, info in type(own).model_fields.items():
                if info.serialization_alias or name == method:
                    name_in_hash = info.serialization_alias or f"{name}.{field}"
                    if name_in_hash in key:
                        raise ValueError(f"{cls.__name__}.{field}: {name_in_hash!r} is already in the request hash")
                    key[name_in_hash] = getattr(own, field)
        return key


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
class Capabilities:
    """What a method *is*, so that no code outside `elicit/` compares method names.

    `calibratable`: its distribution is read off option log-probabilities, so temperature scaling
    (`calibrate`) applies to it. `free_text`: it parses a generated reply, which can fail to parse.
    `states_distribution`: the reply states the distribution itself (a JSON object of
    probabilities, read strictly), the task human annotators did too; validation bounds how often
    that parse fails (`validate.max_verbalized_failure_rate`). `k2s_role`: its side of the
    knowledge-to-simulation gap (Meister et al.: the model *knows* a distribution it states,
    `knowledge`, better than it *simulates* one by sampling, `simulation`); None = not part of it.
    """

    calibratable: bool = False
    free_text: bool = False
    states_distribution: bool = False
    k2s_role: Literal["knowledge", "simulation"] | None = None


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
    capabilities: Capabilities = Capabilities()
    settings: type[Settings] = Settings  # its own knobs (params.yaml `infer.<method>:`); none by default


def failed(error: str, raw_reply: str | None = None) -> Result:
    return Result(probs=[], raw_reply=raw_reply, failed=True, error=error)


def question_prompt(item: Item, order: Sequence[int], template: str, **extra: object) -> Prompt:
    shown = letters(len(order))
    user = fill(template, question=item.question, options=format_options(item.options, order),
                population=item.context.population, letters=", ".join(shown), **extra)
    return Prompt((("system", item.context.system), ("user", user)))


def orders_for(item: Item, settings: MethodSettings) -> list[list[int]]:
    return cyclic_orders(len(item.options), settings.option_orders)
