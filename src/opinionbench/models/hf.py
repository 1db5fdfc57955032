"""`hf` backend: a transformers causal LM in-process (hub id, local directory or GGUF file).

Why the fast path looks the way it does:
- one forward per prompt, never one per option: the next-token distribution at the last
  position already holds every option letter;
- the base model is called without its LM head and the head is applied to the last real
  position only, so the [batch, seq, vocab] logits tensor is never materialised;
- prompts that share a token prefix (system prompt, persona or few-shot block, instructions)
  run that prefix once; its KV cache is repeated over the batch of suffixes, in one copy into
  a cache the suffixes are written into in place (hf_cache.py);
- suffixes are sorted by length and batched so padding is small; padding is on the right and
  the last real position is gathered, so a row's result does not depend on what else is in
  its batch (tests check batch size 1 == 8 and fast == per-option loop within 1e-4).

Generation (`verbalized`, `sequence`) batches the same way: many prompts decoded together,
their shared prefix run once (hf_decode.py), the constrained JSON grammar (json_grammar.py)
followed per row. Where the weights come from (hub id, directory, GGUF converted once) is
hf_weights.py. The plain reference paths the fast ones are checked and timed against (one
forward per option, one prompt at a time) are tests/hf_reference.py.

torch is imported when a model is loaded or run, not when this module is: config validation
imports the module for `HFSettings`, and a run with another backend must not pay for torch.
"""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field, field_validator

from opinionbench.io import DataPath
from opinionbench.models import backends, cpu_allocator, hf_decode
from opinionbench.models.base import Backend, BackendSettings, Failure, GenerationRequest, ModelError, NextToken, Prompt
from opinionbench.models.hf_weights import resolve_model
from opinionbench.models.json_grammar import digit_ids

if TYPE_CHECKING:
    import torch

F = TypeVar("F", bound=Callable)


class HFSettings(BackendSettings):
    """A `models:` entry with `backend: hf`; the backend's own knobs live here, beside the code that reads them."""

    model: str = Field(description="hub id, local directory, .gguf file or embedded:smollm2")
    batch_size: int | dict[Literal["cpu", "cuda", "mps"], Annotated[int, Field(ge=1, le=4096)]] = Field(
        8, description="prompts per forward pass: one number, or per device ({cpu: 8, cuda: 64})")
    generation_batch_size: int = Field(
        128, ge=1, le=4096, description="rows decoded together by generate (verbalized, sequence; a sampled "
                                        "request takes n rows, never split; its samples share rows while "
                                        "their tokens agree, so it mostly decodes on fewer)")
    threads: int | None = Field(2, ge=1, description="torch CPU threads")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto: cuda, else mps, else cpu")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on cuda, float32 elsewhere (a non-fp32 dtype is part of the revision)")

    @field_validator("batch_size")
    @classmethod
    def _some_size(cls, value):
        if isinstance(value, int) and not 1 <= value <= 4096:
            raise ValueError("batch_size must be 1..4096")
        return value
    cache_dir: DataPath = Field(Path("data/models"), description="converted GGUF weights, reused by later runs")


def resolve_device(device: str) -> str:
    """`auto` → the best accelerator torch sees; an explicit one that is absent is a clear error."""
    import torch

    available = {"cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(), "cpu": True}
    if device == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available[device]:
        raise ModelError(f"device {device!r} is not available to torch here (use device: auto or cpu)")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    return ("bfloat16" if device == "cuda" else "float32") if dtype == "auto" else dtype


def _inference_mode(method: F) -> F:
    """`torch.inference_mode()` on the backend's device, as a decorator that imports torch on the
    first call: every tensor the method creates is made on `self.device` (torch's device context)."""

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        import torch

        with torch.inference_mode(), torch.device(self.device):
            return method(self, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


@backends.register("hf")
class HFBackend(Backend):
    Settings = HFSettings

    def __init__(self, model: str, **knobs: Any) -> None:
        """`knobs`: fields of `HFSettings`, whose defaults fill in the rest. A params.yaml entry
        arrives validated (`from_settings`); tests and benchmarks pass their values as they are."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        unknown = sorted(set(knobs) - set(HFSettings.model_fields))
        if unknown:
            raise TypeError(f"HFBackend: unknown setting(s) {', '.join(unknown)}")
        settings = HFSettings.model_construct(backend="hf", model=model, **knobs)
        revision = settings.revision
        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.device = resolve_device(settings.device)
        if self.device == "cpu":
            cpu_allocator.keep_freed_memory()  # activations reused, not faulted in each forward
        dtype = resolve_dtype(settings.dtype, self.device)
        source, self.model_id, self.revision = resolve_model(model, Path(settings.cache_dir), revision)
        hub_revision = revision if source == model else None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, revision=hub_revision)
            self.model = AutoModelForCausalLM.from_pretrained(source, revision=hub_revision, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{model}: cannot load with transformers ({str(exc).splitlines()[0]})") from None
        self.model.to(self.device).eval()
        if dtype != "float32":  # other numerics, other answers: cells cached in fp32 are not reused
            self.revision = f"{self.revision}+{dtype}"
        # The transformer body (hidden states) and the LM head, found through transformers' own
        # accessors rather than a `.model`/`.lm_head` attribute that only Llama-like classes have:
        # the fast path runs the body, then the head at the positions it needs.
        self.body = self.model.base_model
        self.head = self.model.get_output_embeddings()
        if self.revision == "main" and getattr(self.model.config, "_commit_hash", None):
            self.revision = str(self.model.config._commit_hash)
        self.dtype = dtype
        size, default = settings.batch_size, HFSettings.model_fields["batch_size"].default
        self.batch_size = size if isinstance(size, int) else int(size.get(self.device, default))
        self.generation_batch_size = settings.generation_batch_size
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.digits = digit_ids(self.tokenizer)  # None: the tokenizer cannot spell a number digit by digit
        self.tokens_processed = 0  # forward tokens actually computed (benchmarks read it)
        from opinionbench.models import hf_cache

        # How the batched paths hold and read their KV caches, decided once for the loaded model
        # (hf_cache.py): written in place where every cache layer is plain full attention, and
        # attention on the cache's own key/value heads on the CPU.
        self.growing = hf_cache.growable(self.model.config)
        self.grouped = self.device == "cpu"

    def request_key(self) -> dict[str, object]:
        """Another device class computes other numbers (kernels, reductions): its cells are its own.
        The CPU, where every cached cell so far was computed, adds nothing, so those stay valid;
        dtype and weights are already in `revision`."""
        device = str(self.device).split(":")[0]  # "cuda:1" and "cuda" compute alike
        return {} if device == "cpu" else {"device": device}

    # -- prompts -> token ids ---------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        messages = prompt.as_openai()
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages) + "\n"

    def encode(self, prompt: Prompt) -> list[int]:
        return self.tokenizer(self.render(prompt), add_special_tokens=not self.tokenizer.chat_template)["input_ids"]

    def candidate_ids(self, candidates: Sequence[str]) -> dict[str, int]:
        """Token id of each candidate that is a single token; duplicates keep the first name."""
        ids: dict[str, int] = {}
        seen: set[int] = set()
        for cand in candidates:
            tok = self.tokenizer(cand, add_special_tokens=False)["input_ids"]
            if len(tok) == 1 and tok[0] not in seen:
                ids[cand] = tok[0]
                seen.add(tok[0])
        return ids

    # -- the fast path ----------------------------------------------------------------------
    @_inference_mode
    def next_token_logprobs(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[NextToken | Failure]:
        import torch

        cand = self.candidate_ids(candidates)
        index = torch.tensor(list(cand.values()), dtype=torch.long)
        encoded = [self.encode(p) for p in prompts]
        out: list[NextToken | Failure] = [Failure("not computed")] * len(prompts)
        for rows, prefix_len in self.prefix_groups(prompts, encoded):
            prefix = encoded[rows[0]][:prefix_len]
            cache = self.prefix_cache(prefix) if prefix_len else None
            rows = sorted(rows, key=lambda r: (len(encoded[r]), r))
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start:start + self.batch_size]
                logp = self._last_logprobs([encoded[r][prefix_len:] for r in batch], prefix_len, cache)
                picked = logp[:, index]
                for r, values in zip(batch, picked.tolist()):
                    out[r] = NextToken(dict(zip(cand.keys(), values)), exhaustive=True)
        return out

    def prefix_groups(self, prompts: Sequence[Prompt], encoded: list[list[int]]) -> list[tuple[list[int], int]]:
        """Prompts grouped by their leading message(s) with the token prefix they all share.

        The common prefix is computed on token ids, so sharing is exact by construction; at
        least one token per prompt is left to run so every row has a last position of its own.
        """
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, p in enumerate(prompts):
            groups[p.messages[:-1]].append(i)
        result = []
        for rows in groups.values():
            if len(rows) < 2:
                result.append((rows, 0))
                continue
            first = encoded[rows[0]]
            n = min(len(encoded[r]) for r in rows) - 1
            for r in rows[1:]:
                seq = encoded[r]
                k = 0
                while k < n and seq[k] == first[k]:
                    k += 1
                n = k
            result.append((rows, max(n, 0)))
        return result

    def prefix_cache(self, prefix: list[int]):
        import torch

        ids = torch.tensor([prefix], dtype=torch.long)
        self.count_tokens(len(prefix))
        return self.body(input_ids=ids, use_cache=True).past_key_values

    def _last_logprobs(self, suffixes: list[list[int]], prefix_len: int, cache) -> torch.Tensor:
        import torch

        width = max(len(s) for s in suffixes)
        ids = torch.full((len(suffixes), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(suffixes), prefix_len + width), dtype=torch.long)
        mask[:, :prefix_len] = 1
        for i, s in enumerate(suffixes):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, prefix_len:prefix_len + len(s)] = 1
        self.count_tokens(sum(len(s) for s in suffixes))
        kwargs = {}
        if cache is not None:
            kwargs["past_key_values"] = self._repeated(cache, len(suffixes), width)
        positions = torch.arange(prefix_len, prefix_len + width).unsqueeze(0).expand(len(suffixes), -1)
        hidden = self.body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=cache is not None,
                                  **kwargs).last_hidden_state
        last = torch.tensor([len(s) - 1 for s in suffixes])
        logits = self.head(hidden[torch.arange(len(suffixes)), last])
        return torch.log_softmax(logits.float(), dim=-1)

    def _repeated(self, cache, rows: int, width: int):
        """The one-row prefix cache over `rows` rows with room for `width` more columns: one copy into
        a cache written in place (hf_cache.py), or transformers' deep copy and repeat for models
        whose cache layers are not plain full attention."""
        from opinionbench.models import hf_cache

        if self.growing:
            return hf_cache.expanded_cache(self.model.config, cache, rows, width)
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(rows)
        return past

    # -- generation ---------------------------------------------------------------------------
    @_inference_mode
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
        """Replies to many prompts decoded together (`generation_batch_size` rows at a time; how
        and why in hf_decode.py).

        What is guaranteed, on one machine and device in float32 (bfloat16 rounds coarsely enough
        that near-ties between tokens can flip with the batch):
        - greedy replies (temperature 0, and the constrained JSON of `verbalized`) are the strings
          of a plain path that runs each prompt alone (tests/hf_reference.py): a batch
          moves float rounding by ~1e-6, far below the gaps between the tokens a row chooses among
          (the tests compare both paths on real prompts);
        - a sampled request draws from its own `torch.Generator` seeded with its `seed`, in the
          same order on the same [n, vocab] probabilities as `model.generate` with that global
          seed: the same request gives the same samples in every call whatever else is in its
          batch, and the one-at-a-time path's samples unless rounding moves a probability across
          a draw's boundary (not seen in the tests; not a bitwise promise across batch makeups).
        """
        return hf_decode.generate(self, requests)
