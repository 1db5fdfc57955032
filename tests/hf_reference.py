"""The plain ways to do what the `hf` backend's fast paths do, for the tests to check them against
and the benchmarks to time them against (benchmarks/inference.py, benchmarks/generation.py).

- `per_option_logprobs`: one full forward with logits per candidate token, the obvious way to
  score options, instead of one forward per prompt with the LM head at its last position only;
- `generate_one_at_a_time`: each prompt alone, the constrained JSON fed chunk by chunk with the
  full LM head, free text by transformers' `model.generate` with the global seed set per sampled
  request, instead of many prompts decoded together on shared prefixes (hf_decode.py).

They live with the tests, not in the package: no run of the pipeline calls them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

from opinionbench.models.base import Failure, GenerationRequest, NextToken, Prompt
from opinionbench.models.hf_decode import constrained_letters
from opinionbench.models.json_grammar import json_program

F = TypeVar("F", bound=Callable)


def _on_device(fn: F) -> F:
    """`fn(backend, ...)` under `torch.inference_mode()` on the backend's device, as the backend runs."""

    @functools.wraps(fn)
    def wrapped(backend, *args, **kwargs):
        import torch

        with torch.inference_mode(), torch.device(backend.device):
            return fn(backend, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


@_on_device
def per_option_logprobs(backend, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[NextToken]:
    """Each prompt's log-probability of each candidate token, one full forward per candidate."""
    import torch

    cand = backend.candidate_ids(candidates)
    out = []
    for p in prompts:
        ids = backend.encode(p)
        values = {}
        for name, tok in cand.items():
            x = torch.tensor([ids + [tok]])
            backend.count_tokens(x.shape[1])
            logits = backend.model(input_ids=x).logits
            values[name] = float(torch.log_softmax(logits[0, -2].float(), dim=-1)[tok])
        out.append(NextToken(values, exhaustive=True))
    return out


@_on_device
def generate_one_at_a_time(backend, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
    """What `backend.generate` answers, each prompt run alone."""
    import torch

    out: list[list[str] | Failure] = []
    for r in requests:
        if constrained_letters(backend, r):
            out.append([_constrained_json(backend, r)] * r.n)
        elif r.temperature == 0:
            out.append([_greedy(backend, r)] * r.n)
        else:
            torch.manual_seed(r.seed)
            out.append(_sample(backend, r))
    return out


def _constrained_json(backend, request: GenerationRequest) -> str:
    """One verbalized reply: the prompt run alone, then each chunk the grammar asks for fed on top
    of its cache and the full LM head read at each choice."""
    import torch

    program = json_program(constrained_letters(backend, request) or [], backend.tokenizer, backend.digits)
    ids = backend.encode(request.prompt)
    past = backend.body(input_ids=torch.tensor([ids]), use_cache=True).past_key_values
    backend.count_tokens(len(ids))
    chunk = next(program).tokens  # no guesses: every choice is read after the last token fed
    while True:
        out = backend.body(input_ids=torch.tensor([chunk]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = backend.head(out.last_hidden_state[:, -1])[0]
        backend.count_tokens(len(chunk))
        try:
            chunk = program.send(lambda token_ids, back=0, logits=logits: int(torch.argmax(logits[token_ids]))).tokens
        except StopIteration as done:
            return done.value


def _sample(backend, request: GenerationRequest) -> list[str]:
    """`n` sampled replies to one prompt by `model.generate`; the prompt is run once and its KV
    cache repeated over the n samples (few-shot prompts are long)."""
    import torch

    ids = backend.encode(request.prompt)
    past = backend.body(input_ids=torch.tensor([ids[:-1]]), use_cache=True).past_key_values
    past.batch_repeat_interleave(request.n)
    x = torch.tensor([ids] * request.n)
    generated = backend.model.generate(
        input_ids=x, attention_mask=torch.ones_like(x), past_key_values=past, max_new_tokens=request.max_tokens,
        do_sample=True, temperature=request.temperature, top_k=0, top_p=1.0, pad_token_id=backend.pad_id)
    backend.count_tokens(len(ids) + request.n * (generated.shape[1] - len(ids)))
    return [backend.tokenizer.decode(g[len(ids):], skip_special_tokens=True) for g in generated]


def _greedy(backend, request: GenerationRequest) -> str:
    """One greedy free-text reply by `model.generate`, the prompt alone."""
    import torch

    ids = torch.tensor([backend.encode(request.prompt)])
    generated = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                       max_new_tokens=request.max_tokens, pad_token_id=backend.pad_id)
    backend.count_tokens(generated.shape[1])
    return backend.tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True)
