"""The grammar of a `verbalized` reply ({"A": 0.25, "B": 0.75, ...}), followed by the `hf` backend.

A reply matches the schema by construction, as a server's JSON-schema `response_format`
gives: the structure (`{"A": `, `, "B": `, `}`) is forced and each number d.dd is chosen
greedily by the model among the digit tokens (first digit 0 or 1; 1 is followed by .00).
Small models that ignore "reply with JSON" still state a distribution this way; the reply is
parsed and recorded like any other.

Why written here rather than taken from a grammar library (xgrammar, outlines): the grammar is
this one shape, and its forced stretches are fed as whole chunks of several tokens, one
forward each, to many rows at once on top of their own KV caches; a library's token mask
would still leave that decoding loop to write, and a dependency to carry.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, NamedTuple, Protocol

DIGITS = "0123456789."

# What the program is sent after each feed: a function that, given some token ids, returns the
# index of the one the model scores highest after the feed's last token, or after the token
# `back` places before it (the first one on a tie).
Best = Callable[..., int]


class Feed(NamedTuple):
    """What a row is fed next: first take back the last `retract` tokens it was fed (a guess that
    missed), then feed `tokens`."""

    tokens: list[int]
    retract: int = 0


class Tokenizer(Protocol):
    def __call__(self, text: str, add_special_tokens: bool = ...) -> Any: ...


def schema_letters(schema: dict | None) -> list[str] | None:
    """The letters of a verbalized-distribution schema ({letter: number}, all required), else None."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    required = schema.get("required") or []
    props = schema.get("properties") or {}
    if not required or set(required) != set(props) or not all(
            isinstance(k, str) and len(k) == 1 and props[k].get("type") == "number" for k in required):
        return None
    return list(required)


def digit_ids(tokenizer: Tokenizer) -> dict[str, int] | None:
    """Token ids of "0".."9" and "." when each is one token (else the grammar cannot be followed)."""
    ids = {c: tokenizer(c, add_special_tokens=False)["input_ids"] for c in DIGITS}
    return {c: t[0] for c, t in ids.items()} if all(len(t) == 1 for t in ids.values()) else None


def json_program(letters: list[str], tokenizer: Tokenizer, digit: dict[str, int],
                 guess: bool = False) -> Generator[Feed, Best, str]:
    """The grammar for one row, as a coroutine the decoders drive: it yields what to feed next and
    is sent a `Best` function for the model's scores after it; it returns the reply.

    `guess`: feed `0.` with each key, as if the model will choose 0 (it almost always does): the
    first digit is then read two tokens back and the tenths digit after the guess, from the
    same forward, so a number takes two forwards instead of three. After the first number the
    guess goes on with the tenths digit of the number before (prompt-lookup speculation: small
    models mostly repeat one number; SmolLM2 did in 32 of 32 replies), so a number whose tenths
    repeat takes one forward, its hundredths read after the guessed digit. Whatever misses is
    taken back (`Feed.retract`) with the next feed: `0.` and the tenths when the model chooses 1,
    the tenths alone when it chooses other tenths. The reply is the same either way."""

    def choose(best: Best, options: str, back: int = 0) -> str:
        return options[best([digit[c] for c in options], back)]

    text, pending, retract = "", [], 0
    previous = None  # the tenths digit of the number before: guessed again (small models repeat)
    for j, letter in enumerate(letters):
        forced = ("{" if j == 0 else ", ") + f'"{letter}": '
        guessed = ([digit["0"], digit["."]] + ([digit[previous]] if previous else [])) if guess else []
        best = yield Feed(pending + tokenizer(forced, add_special_tokens=False)["input_ids"] + guessed, retract)
        retract = 0
        if choose(best, "01", back=len(guessed)) == "1":
            number, pending, retract = "1.00", [digit["1"], digit["."], digit["0"], digit["0"]], len(guessed)
            previous = "0"
        else:
            tenth = choose(best if guess else (yield Feed([digit["0"], digit["."]])), "0123456789",
                           back=max(0, len(guessed) - 2))
            if len(guessed) == 3 and tenth == previous:  # the guessed tenths held: the hundredths are read too
                hundredth = choose(best, "0123456789")
            else:
                hundredth = choose((yield Feed([digit[tenth]], max(0, len(guessed) - 2))), "0123456789")
            number, pending, previous = f"0.{tenth}{hundredth}", [digit[hundredth]], tenth
        text += forced + number
    return text + "}"
