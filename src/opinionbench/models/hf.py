"""`hf` backend: a transformers causal LM in-process (hub id, local directory or GGUF file).

Why the fast path looks the way it does:
- one forward per prompt, never one per option: the next-token distribution at the last
  position already holds every option letter;
- the base model is called without its LM head and the head is applied to the last real
  position only, so the [batch, seq, vocab] logits tensor is never materialised;
- prompts that share a token prefix (system prompt, persona or few-shot block, instructions)
  run that prefix once; its KV cache is repeated over the batch of suffixes;
- suffixes are sorted by length and batched so padding is small; padding is on the right and
  the last real position is gathered, so a row's result does not depend on what else is in
  its batch (tests check batch size 1 == 8 and fast == per-option loop within 1e-4).

Generation (`verbalized`, `sequence`) batches the same way: many prompts decoded together
(a one-row step is bound by reading the weights, so more rows cost little), their
shared prefix run once, left padding with masks and each row's own positions, the constrained
JSON grammar followed per row, each sampled request drawing from its own seeded generator.
`generation_batch_size: 1` keeps the one-prompt-at-a-time path the batched one is checked against.

Where the weights come from (hub id, directory, GGUF converted once) is hf_weights.py.

torch is imported when a model is loaded or run, not when this module is: config validation
imports the module for `HFSettings`, and a run with another backend must not pay for torch.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field, field_validator

from opinionbench.config import DataPath
from opinionbench.models import backends
from opinionbench.models.base import Backend, BackendSettings, Failure, GenerationRequest, ModelError, NextToken, Prompt
from opinionbench.models.hf_weights import resolve_model

if TYPE_CHECKING:
    import torch

F = TypeVar("F", bound=Callable)


class HFSettings(BackendSettings):
    """A `models:` entry with `backend: hf`; the backend's own knobs live here, beside the code that reads them."""

    model: str = Field(description="hub id, local directory, .gguf file or embedded:smollm2")
    batch_size: int | dict[Literal["cpu", "cuda", "mps"], Annotated[int, Field(ge=1, le=4096)]] = Field(
        8, description="prompts per forward pass: one number, or per device ({cpu: 8, cuda: 64})")
    generation_batch_size: int = Field(
        32, ge=1, le=4096, description="rows decoded together by generate (verbalized, sequence; a sampled "
                                       "request takes n rows); 1 = one prompt at a time, the reference path")
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

    def __init__(self, model: str, *, revision: str | None = None, cache_dir: Path = Path("data/models"),
                 batch_size: int | dict[str, int] = 8, threads: int | None = None, device: str = "auto",
                 dtype: str = "auto", share_prefix: bool = True, generation_batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        dtype = resolve_dtype(dtype, self.device)
        source, self.model_id, self.revision = resolve_model(model, Path(cache_dir), revision)
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
        self.batch_size = batch_size if isinstance(batch_size, int) else int(batch_size.get(self.device, 8))
        self.share_prefix = share_prefix
        self.generation_batch_size = generation_batch_size
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.tokens_processed = 0  # forward tokens actually computed (benchmarks read it)

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
        for rows, prefix_len in self._prefix_groups(prompts, encoded):
            prefix = encoded[rows[0]][:prefix_len]
            cache = self._prefix_cache(prefix) if prefix_len else None
            rows = sorted(rows, key=lambda r: (len(encoded[r]), r))
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start:start + self.batch_size]
                logp = self._last_logprobs([encoded[r][prefix_len:] for r in batch], prefix_len, cache)
                picked = logp[:, index]
                for r, values in zip(batch, picked.tolist()):
                    out[r] = NextToken(dict(zip(cand.keys(), values)), exhaustive=True)
        return out

    def _prefix_groups(self, prompts: Sequence[Prompt], encoded: list[list[int]]) -> list[tuple[list[int], int]]:
        """Prompts grouped by their leading message(s) with the token prefix they all share.

        The common prefix is computed on token ids, so sharing is exact by construction; at
        least one token per prompt is left to run so every row has a last position of its own.
        """
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, p in enumerate(prompts):
            groups[p.messages[:-1] if self.share_prefix else (i,)].append(i)
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

    def _prefix_cache(self, prefix: list[int]):
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
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(len(suffixes))
            kwargs["past_key_values"] = past
        positions = torch.arange(prefix_len, prefix_len + width).unsqueeze(0).expand(len(suffixes), -1)
        hidden = self.body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=cache is not None,
                                  **kwargs).last_hidden_state
        last = torch.tensor([len(s) - 1 for s in suffixes])
        logits = self.head(hidden[torch.arange(len(suffixes)), last])
        return torch.log_softmax(logits.float(), dim=-1)

    # -- the plain reference: one full forward per option, as the seeds' scripts do ---------
    @_inference_mode
    def next_token_logprobs_per_option(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[NextToken]:
        import torch

        cand = self.candidate_ids(candidates)
        out = []
        for p in prompts:
            ids = self.encode(p)
            values = {}
            for name, tok in cand.items():
                x = torch.tensor([ids + [tok]])
                self.count_tokens(x.shape[1])
                logits = self.model(input_ids=x).logits
                values[name] = float(torch.log_softmax(logits[0, -2].float(), dim=-1)[tok])
            out.append(NextToken(values, exhaustive=True))
        return out

    # -- generation ---------------------------------------------------------------------------
    @_inference_mode
    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
        """Replies to many prompts decoded together (`generation_batch_size` rows at a time).

        Why batched: a decoding step for one row is bound by reading the weights (and by per-op
        overhead), so rows added to it are nearly free until the step becomes compute-bound; and
        prompts that share a token prefix (system prompt, persona, few-shot block) run it once.
        What is left is the prompts' own tokens, which both paths must compute.

        What is guaranteed, on one machine and device in float32 (bfloat16 rounds coarsely enough
        that near-ties between tokens can flip with the batch):
        - greedy replies (temperature 0, and the constrained JSON of `verbalized`) are the strings
          of the one-at-a-time path (`generation_batch_size: 1`, `_generate_one_at_a_time`): a batch
          moves float rounding by ~1e-6, far below the gaps between the tokens a row chooses among
          (the tests compare both paths on real prompts);
        - a sampled request draws from its own `torch.Generator` seeded with its `seed`, in the
          same order on the same [n, vocab] probabilities as `model.generate` with that global
          seed: the same request gives the same samples in every call whatever else is in its
          batch, and the one-at-a-time path's samples unless rounding moves a probability across
          a draw's boundary (not seen in the tests; not a bitwise promise across batch makeups).
        """
        if self.generation_batch_size == 1:
            return self._generate_one_at_a_time(requests)
        encoded = [self.encode(r.prompt) for r in requests]
        prefixes = _SharedPrefixes(self, [r.prompt for r in requests], encoded)
        constrained = [i for i, r in enumerate(requests) if r.temperature == 0 and self._schema_letters(r.json_schema)]
        free = sorted(set(range(len(requests))) - set(constrained))
        out: list[list[str] | Failure] = [Failure("not computed")] * len(requests)
        for batch in self._generation_batches(requests, constrained, prefixes):
            for i, text in zip(batch, self._decode_constrained([requests[i] for i in batch], batch, prefixes)):
                out[i] = [text] * requests[i].n
        for batch in self._generation_batches(requests, free, prefixes):
            for i, texts in zip(batch, self._decode_free([requests[i] for i in batch], batch, prefixes)):
                out[i] = texts
        return out

    def _generation_batches(self, requests: Sequence[GenerationRequest], indices: list[int],
                            prefixes: _SharedPrefixes) -> list[list[int]]:
        """`indices` in batches of at most `generation_batch_size` rows, sorted by the length left to
        run after the shared prefix so padding is small. A sampled request takes n rows and is never
        split: its n samples draw from one generator, as `model.generate` draws them."""
        batches: list[list[int]] = []
        batch: list[int] = []
        size = 0
        for i in sorted(indices, key=lambda i: (len(prefixes.suffix(i)), i)):
            rows = _rows_of(requests[i])
            if batch and size + rows > self.generation_batch_size:
                batches.append(batch)
                batch, size = [], 0
            batch.append(i)
            size += rows
        return batches + ([batch] if batch else [])

    def _decode_constrained(self, requests: list[GenerationRequest], batch: list[int],
                            prefixes: _SharedPrefixes) -> list[str]:
        """Verbalized JSON replies of a batch: every row follows its own `_json_program`, all rows
        are fed together each step (chunks of different lengths left-padded), and only the digit
        rows of the LM head are applied. The prompt and the first forced chunk run in one forward."""
        digits = list((self._digit_ids() or {}).values())
        column = {t: j for j, t in enumerate(digits)}
        programs = [self._json_program(self._schema_letters(r.json_schema) or []) for r in requests]
        chunks = [next(p) for p in programs]
        rows = self._start(prefixes, batch, chunks)
        order = list(range(len(requests)))  # the request of each row of `rows`
        texts = [""] * len(requests)
        pending = set(order)
        while True:
            scores = self._head_at(rows.hidden, digits)
            for i, k in enumerate(order):
                if k not in pending:
                    continue
                try:
                    chunks[k] = programs[k].send(lambda ids, row=scores[i]: row[[column[t] for t in ids]])
                except StopIteration as done:
                    texts[k] = done.value
                    pending.discard(k)
            if not pending:
                return texts
            keep = self._compact(rows, order, pending)
            if keep is not None:
                order = [order[i] for i in keep]
            self._feed(rows, [chunks[k] if k in pending else [self.pad_id] for k in order])

    def _decode_free(self, requests: list[GenerationRequest], batch: list[int],
                     prefixes: _SharedPrefixes) -> list[list[str]]:
        """Free-text replies of a batch, greedy or sampled: each prompt runs once, a sampled
        request's row is then repeated over its n samples; one token per row per step, chosen as
        `model.generate` chooses it (`_next_tokens`), until each request's rows have all ended
        (an end-of-sequence token) or reached its max_tokens."""
        rows = self._start(prefixes, batch, [[] for _ in batch])
        owner = [k for k, r in enumerate(requests) for _ in range(_rows_of(r))]
        rows.select(owner)
        generators = [self._generator(r) for r in requests]
        eos = self._eos_ids()
        tokens: list[list[int]] = [[] for _ in owner]
        ended = [False] * len(owner)
        order = list(range(len(owner)))  # the sample row (index into owner) of each row of `rows`
        pending = set(range(len(requests)))
        step = 0
        while True:
            logits = self.head(rows.hidden).float()
            chosen = [self.pad_id] * len(order)
            for k, span in _spans([owner[row] for row in order]):
                if k not in pending:
                    continue
                picked = self._next_tokens(logits[span], requests[k], generators[k]).tolist()
                for i, token in zip(range(span.start, span.stop), picked):
                    chosen[i] = token
                    row = order[i]
                    if not ended[row]:
                        tokens[row].append(token)
                        ended[row] = token in eos
                if step + 1 >= requests[k].max_tokens or all(ended[order[i]] for i in range(span.start, span.stop)):
                    pending.discard(k)
            step += 1
            if not pending:
                break
            keep = self._compact(rows, [owner[row] for row in order], pending)
            if keep is not None:
                order, chosen = [order[i] for i in keep], [chosen[i] for i in keep]
            self._feed(rows, [[token] for token in chosen])
        return [[self.tokenizer.decode(tokens[row], skip_special_tokens=True) for row, o in enumerate(owner) if o == k]
                for k in range(len(requests))]

    @staticmethod
    def _compact(rows: _Rows, owners: list[int], pending: set[int]) -> list[int] | None:
        """Rows whose request is done leave the batch once they are a quarter of it (leaving copies
        the cache, as every step's append does); until then they are fed a pad and ignored.
        Returns the indices of the rows kept, or None when the batch is left as it is."""
        keep = [i for i, k in enumerate(owners) if k in pending]
        if len(owners) - len(keep) < max(1, len(owners) // 4):
            return None
        rows.select(keep)
        return keep

    def _start(self, prefixes: _SharedPrefixes, batch: list[int], first: list[list[int]]) -> _Rows:
        """The batch's prompts run, `batch_size` prompts per forward (the batch is sorted by length,
        so each forward pads little; one forward for 32 prompts of 150-210 tokens computed 30% pads),
        then joined into one set of rows. Each row's shared prefix comes from its group's cache; the
        rest of its prompt, then `first` (tokens forced before any choice), is computed here."""
        import torch

        parts = []
        for start in range(0, len(batch), self.batch_size):
            some = batch[start:start + self.batch_size]
            lengths = [prefixes.length[i] for i in some]
            cache, mask = self._stacked([prefixes.cache(i) for i in some],
                                        [torch.ones((1, n), dtype=torch.long) for n in lengths])
            rows = _Rows(cache, mask, torch.tensor(lengths, dtype=torch.long))
            self._feed(rows, [prefixes.suffix(i) + extra for i, extra in zip(some, first[start:start + len(some)])])
            parts.append(rows)
        if len(parts) == 1:
            return parts[0]
        cache, mask = self._stacked([p.cache for p in parts], [p.mask for p in parts])
        return _Rows(cache, mask, torch.cat([p.position for p in parts]), torch.cat([p.hidden for p in parts]))

    def _stacked(self, caches: Sequence[Any], masks: Sequence[torch.Tensor]) -> tuple[Any, torch.Tensor]:
        """One cache and mask for the rows of several caches of different widths (a prompt's shared
        prefix, None for none; a group of rows already run): each right-aligned in the widest, the
        columns before it zero and masked, so every row's last token stays the last column. Keys
        carry their rotary positions, so the alignment moves nothing. `masks`: each cache's
        [rows, width] mask."""
        import torch
        from transformers import DynamicCache

        width = max(m.shape[1] for m in masks)
        mask = torch.cat([torch.nn.functional.pad(m, (width - m.shape[1], 0)) for m in masks])
        some = next((c for c, m in zip(caches, masks) if c is not None and m.shape[1]), None)
        if some is None:
            return DynamicCache(config=self.model.config), mask
        layers = []
        for j, layer in enumerate(some.layers):
            keys, values = [], []
            for cache, m in zip(caches, masks):
                if cache is None or not m.shape[1]:
                    shape = (m.shape[0], layer.keys.shape[1], width, layer.keys.shape[3])
                    keys.append(layer.keys.new_zeros(shape))
                    values.append(layer.values.new_zeros(shape))
                else:
                    pad = (0, 0, width - m.shape[1], 0)  # along the sequence dimension, before
                    keys.append(torch.nn.functional.pad(cache.layers[j].keys, pad))
                    values.append(torch.nn.functional.pad(cache.layers[j].values, pad))
            layers.append((torch.cat(keys), torch.cat(values)))
        return DynamicCache(layers, config=self.model.config), mask

    def _feed(self, rows: _Rows, chunks: list[list[int]]) -> None:
        """Each row's next tokens (one or more, as many as it needs) run on top of its cache: the
        chunks are left-padded to one width with the pads masked, so every row's last token is the
        last column, and each row's positions continue its own count."""
        import torch

        width = max(len(c) for c in chunks)
        ids = torch.full((len(chunks), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunks), width), dtype=torch.long)
        positions = rows.position.unsqueeze(1).repeat(1, width)  # a pad's position is never attended to
        for i, chunk in enumerate(chunks):
            ids[i, width - len(chunk):] = torch.tensor(chunk, dtype=torch.long)
            mask[i, width - len(chunk):] = 1
            positions[i, width - len(chunk):] += torch.arange(len(chunk))
        rows.mask = torch.cat([rows.mask, mask], dim=1)
        hidden = self.body(input_ids=ids, attention_mask=rows.mask, position_ids=positions,
                           past_key_values=rows.cache, use_cache=True).last_hidden_state
        rows.hidden = hidden[:, -1]
        rows.position = rows.position + torch.tensor([len(c) for c in chunks], dtype=torch.long)
        self.count_tokens(sum(len(c) for c in chunks))

    def _head_at(self, hidden: torch.Tensor, ids: list[int]) -> torch.Tensor:
        """LM-head logits of the given token ids only, [rows, len(ids)]: a choice among digits
        needs 11 rows of the head, not its 49k."""
        import torch.nn.functional as F

        bias = getattr(self.head, "bias", None)
        return F.linear(hidden, self.head.weight[ids], None if bias is None else bias[ids])

    @staticmethod
    def _next_tokens(logits: torch.Tensor, request: GenerationRequest, generator) -> torch.Tensor:
        """The next token of each of a request's rows, as `model.generate` picks it (top_k=0,
        top_p=1): argmax when greedy, else one draw per row from softmax(logits / temperature)."""
        import torch

        if request.temperature == 0:
            return torch.argmax(logits, dim=-1)
        probs = torch.softmax(logits / request.temperature, dim=-1)
        return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)

    def _generator(self, request: GenerationRequest):
        """A sampled request's own random stream (seeded like `torch.manual_seed(seed)`), None when greedy."""
        import torch

        return torch.Generator(device=self.device).manual_seed(request.seed) if request.temperature > 0 else None

    def _eos_ids(self) -> set[int]:
        """The tokens that end a reply, as `model.generate` reads them from the generation config."""
        eos = self.model.generation_config.eos_token_id
        return set() if eos is None else set(eos if isinstance(eos, list) else [eos])

    # -- the reference: one prompt at a time ----------------------------------------------------
    @_inference_mode
    def _generate_one_at_a_time(self, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
        """`generation_batch_size: 1`, generate as it was before batching: each prompt alone, the
        constrained JSON fed chunk by chunk with the full LM head, free text by `model.generate`
        with the global seed set per sampled request (greedy free text was batched by `batch_size`
        with left padding; here it runs alone). The batched path is tested and benchmarked against it."""
        import torch

        out: list[list[str] | Failure] = []
        for r in requests:
            if r.temperature == 0 and self._schema_letters(r.json_schema):
                out.append([self._constrained_json(r)] * r.n)
            elif r.temperature == 0:
                out.append([self._greedy(r)] * r.n)
            else:
                torch.manual_seed(r.seed)
                out.append(self._sample(r))
        return out

    def _schema_letters(self, schema: dict | None) -> list[str] | None:
        """The letters of a verbalized-distribution schema ({letter: number}, all required), else None."""
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return None
        required = schema.get("required") or []
        props = schema.get("properties") or {}
        if not required or set(required) != set(props) or not all(
                isinstance(k, str) and len(k) == 1 and props[k].get("type") == "number" for k in required):
            return None
        if self._digit_ids() is None:
            return None
        return list(required)

    def _digit_ids(self) -> dict[str, int] | None:
        """Token ids of "0".."9" and "." when each is one token (else constrained decoding is off)."""
        if not hasattr(self, "_digits"):
            ids = {c: self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in "0123456789."}
            self._digits = {c: t[0] for c, t in ids.items()} if all(len(t) == 1 for t in ids.values()) else None
        return self._digits

    def _json_program(self, letters: list[str]) -> Generator[list[int], Callable[[list[int]], torch.Tensor], str]:
        """The grammar of a verbalized reply, for one row, as a coroutine both paths drive: it
        yields the tokens to feed next and is sent a function giving the logits of some token ids
        after them; it returns the reply. A reply matches the schema by construction, as a server's
        JSON-schema `response_format` gives: the structure (`{"A": `, `, "B": `, `}`) is forced,
        and each number d.dd is chosen greedily by the model among the digit tokens (first digit 0
        or 1; 1 is followed by .00). Small models that ignore "reply with JSON" still state a
        distribution this way; the reply is parsed and recorded like any other."""
        import torch

        digit = self._digit_ids() or {}

        def choose(logits_of: Callable[[list[int]], torch.Tensor], options: str) -> str:
            return options[int(torch.argmax(logits_of([digit[c] for c in options])))]

        text, pending = "", []
        for j, letter in enumerate(letters):
            forced = ("{" if j == 0 else ", ") + f'"{letter}": '
            logits_of = yield pending + self.tokenizer(forced, add_special_tokens=False)["input_ids"]
            if choose(logits_of, "01") == "1":
                number, pending = "1.00", [digit["1"], digit["."], digit["0"], digit["0"]]
            else:
                tenth = choose((yield [digit["0"], digit["."]]), "0123456789")
                hundredth = choose((yield [digit[tenth]]), "0123456789")
                number, pending = f"0.{tenth}{hundredth}", [digit[hundredth]]
            text += forced + number
        return text + "}"

    def _constrained_json(self, request: GenerationRequest) -> str:
        """One verbalized reply, the reference way: the prompt run alone, then each chunk the
        grammar asks for fed on top of its cache and the full LM head read at each choice."""
        import torch

        program = self._json_program(self._schema_letters(request.json_schema) or [])
        ids = self.encode(request.prompt)
        past = self.body(input_ids=torch.tensor([ids]), use_cache=True).past_key_values
        self.count_tokens(len(ids))
        chunk = next(program)
        while True:
            out = self.body(input_ids=torch.tensor([chunk]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = self.head(out.last_hidden_state[:, -1])[0]
            self.count_tokens(len(chunk))
            try:
                chunk = program.send(lambda token_ids, logits=logits: logits[token_ids])
            except StopIteration as done:
                return done.value

    def _sample(self, request: GenerationRequest) -> list[str]:
        """`n` sampled replies to one prompt; the prompt is run once and its KV cache repeated
        over the n samples (not n copies of the prompt: few-shot prompts are long)."""
        import torch

        ids = self.encode(request.prompt)
        past = self.body(input_ids=torch.tensor([ids[:-1]]), use_cache=True).past_key_values
        past.batch_repeat_interleave(request.n)
        x = torch.tensor([ids] * request.n)
        generated = self.model.generate(
            input_ids=x, attention_mask=torch.ones_like(x), past_key_values=past, max_new_tokens=request.max_tokens,
            do_sample=True, temperature=request.temperature, top_k=0, top_p=1.0, pad_token_id=self.pad_id)
        self.count_tokens(len(ids) + request.n * (generated.shape[1] - len(ids)))
        return [self.tokenizer.decode(g[len(ids):], skip_special_tokens=True) for g in generated]

    def _greedy(self, request: GenerationRequest) -> str:
        """One greedy free-text reply by `model.generate`, the prompt alone (the reference path)."""
        import torch

        ids = torch.tensor([self.encode(request.prompt)])
        generated = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                        max_new_tokens=request.max_tokens, pad_token_id=self.pad_id)
        self.count_tokens(generated.shape[1])
        return self.tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True)


@dataclass
class _Rows:
    """Rows decoded together: their KV cache, which of its columns are real tokens (`mask`), the
    position id of each row's next token, and the hidden state after each row's last token."""

    cache: Any
    mask: torch.Tensor
    position: torch.Tensor
    hidden: torch.Tensor | None = None

    def select(self, index: list[int]) -> None:
        """Keep the rows at `index`, in that order; an index given k times repeats its row k times."""
        import torch

        at = torch.tensor(index, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(at)
        self.mask, self.position = self.mask[at], self.position[at]
        if self.hidden is not None:
            self.hidden = self.hidden[at]


class _SharedPrefixes:
    """The token prefix each prompt of a `generate` call shares with its group
    (`HFBackend._prefix_groups`), its KV cache computed once, on first use, for every batch."""

    def __init__(self, backend: HFBackend, prompts: Sequence[Prompt], encoded: list[list[int]]) -> None:
        self.backend, self.encoded = backend, encoded
        self.group, self.length = [0] * len(prompts), [0] * len(prompts)
        for g, (rows, n) in enumerate(backend._prefix_groups(prompts, encoded)):
            for r in rows:
                self.group[r], self.length[r] = g, n
        self._caches: dict[int, Any] = {}

    def suffix(self, i: int) -> list[int]:
        return self.encoded[i][self.length[i]:]

    def cache(self, i: int) -> Any:
        """The KV cache of prompt i's shared prefix (one row), None when it shares none."""
        if not self.length[i]:
            return None
        g = self.group[i]
        if g not in self._caches:
            self._caches[g] = self.backend._prefix_cache(self.encoded[i][:self.length[i]])
        return self._caches[g]


def _rows_of(request: GenerationRequest) -> int:
    """Rows a request takes in a batch: its n samples when sampled, one reply copied n times when greedy."""
    return request.n if request.temperature > 0 else 1


def _spans(owners: list[int]) -> Iterator[tuple[int, slice]]:
    """(owner, slice of its rows) for each run of equal owners: a request's rows are contiguous."""
    start = 0
    for owner, run in itertools.groupby(owners):
        n = len(list(run))
        yield owner, slice(start, start + n)
        start += n
