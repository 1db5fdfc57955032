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

Where the weights come from (hub id, directory, GGUF converted once) is hf_weights.py.

torch is imported when a model is loaded or run, not when this module is: config validation
imports the module for `HFSettings`, and a run with another backend must not pay for torch.
"""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

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
                 dtype: str = "auto", share_prefix: bool = True) -> None:
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
        """Greedy requests are batched (left padding); sampled ones run one prompt at a time with
        their own seed, so a reply never depends on which other prompts shared its batch."""
        import torch

        out: list[list[str] | Failure] = [Failure("not computed")] * len(requests)
        for i, r in enumerate(requests):
            if r.temperature == 0 and self._schema_letters(r.json_schema):
                out[i] = [self._constrained_json(r)] * r.n
        greedy = [i for i, r in enumerate(requests) if r.temperature == 0 and not self._schema_letters(r.json_schema)]
        greedy.sort(key=lambda i: len(self.encode(requests[i].prompt)))
        for start in range(0, len(greedy), self.batch_size):
            batch = greedy[start:start + self.batch_size]
            texts = self._generate([requests[i] for i in batch], sample=False)
            for i, t in zip(batch, texts):
                out[i] = [t] * requests[i].n
        for i, r in enumerate(requests):
            if r.temperature > 0:
                torch.manual_seed(r.seed)
                out[i] = self._sample(r)
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

    @_inference_mode
    def _constrained_json(self, request: GenerationRequest) -> str:
        """A reply that matches the verbalized schema by construction, as a server's JSON-schema
        `response_format` gives: the structure (`{"A": `, `, "B": `, `}`) is forced, and each
        number d.dd is chosen greedily by the model among the digit tokens (first digit 0 or 1;
        1 is followed by .00). Small models that ignore "reply with JSON" still state a
        distribution this way; the reply is parsed and recorded like any other."""
        import torch

        letters = self._schema_letters(request.json_schema) or []
        digit = self._digit_ids() or {}
        ids = self.encode(request.prompt)
        out = self.body(input_ids=torch.tensor([ids]), use_cache=True)
        state = {"past": out.past_key_values, "hidden": out.last_hidden_state[:, -1]}
        self.count_tokens(len(ids))

        def feed(tokens: list[int]) -> None:
            o = self.body(input_ids=torch.tensor([tokens]), past_key_values=state["past"], use_cache=True)
            state["past"], state["hidden"] = o.past_key_values, o.last_hidden_state[:, -1]
            self.count_tokens(len(tokens))

        def choose(options: str) -> str:
            logits = self.head(state["hidden"])[0]
            return options[int(torch.argmax(logits[[digit[c] for c in options]]))]

        text, pending = "", []
        for j, letter in enumerate(letters):
            forced = ("{" if j == 0 else ", ") + f'"{letter}": '
            feed(pending + self.tokenizer(forced, add_special_tokens=False)["input_ids"])
            first = choose("01")
            if first == "1":
                number, pending = "1.00", [digit["1"], digit["."], digit["0"], digit["0"]]
            else:
                feed([digit["0"], digit["."]])
                tenth = choose("0123456789")
                feed([digit[tenth]])
                hundredth = choose("0123456789")
                number, pending = f"0.{tenth}{hundredth}", [digit[hundredth]]
            text += forced + number
        return text + "}"

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

    def _generate(self, reqs: list[GenerationRequest], sample: bool) -> list[str]:
        import torch

        encoded = [self.encode(r.prompt) for r in reqs]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, e in enumerate(encoded):
            ids[i, width - len(e):] = torch.tensor(e)
            mask[i, width - len(e):] = 1
        kwargs = {"do_sample": True, "temperature": reqs[0].temperature, "top_k": 0, "top_p": 1.0} if sample else {
            "do_sample": False}
        generated = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=reqs[0].max_tokens,
                                        pad_token_id=self.pad_id, **kwargs)
        self.count_tokens(int(mask.sum()) + generated.shape[1] - width)
        return [self.tokenizer.decode(g[width:], skip_special_tokens=True) for g in generated]
