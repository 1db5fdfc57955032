"""One forward of a transformers model for several sets of rows at once, each set (a "part") with
its own KV cache and its own padded layout: the matmuls see all parts' tokens as one matrix,
attention runs part by part.

Why: the batched decoders (hf_decode.py) run a batch's prompts a few at a time, and a
`verbalized` decoding step feeds 1-8 tokens a row. On the 2-core CPU every forward reads all the
weights and sets its kernels up again, and a matmul of 32-256 token rows runs at 70-90% of the
speed of one of 1000, so small forwards cost more per token than prompts do. Packed, a batch's
prompts of different lengths run in one forward without padding each other (a part per group of
similar length), and decoding steps of the rows already started run in the same forward as the
next prompts. Each part keeps the numbers it would get alone, to float rounding: its own mask,
positions and cache. Measured (benchmarks/generation.py, 32 questions): `verbalized` batched
~7.3 s -> ~6.9 s against the same one-at-a-time reference.

How, with transformers' own model code: the parts' tokens are concatenated into one row, and
every per-token op (embedding, norms, projections, rotary with each token's own position id,
MLP) runs on it unchanged. The cache the layers see (`_PartsCache`) writes each part's new keys
and values into that part's cache and hands all parts' keys on; the attention step
(`_parts_attention`, registered in transformers' `AttentionInterface` and selected for the
duration of the forward) cuts the queries back into parts and attends each part over its own
cache, on the CPU as two batched matmuls (`matmul_attention`, faster there than torch's SDPA
kernel for these short rows), elsewhere with transformers' SDPA function. Where only each row's
last few hidden states are read, the last layer's query and output projections and MLP run on
those alone (`_only_at`): the cache needs every layer's keys and values, not its outputs.

Only for models whose layers call the attention interface and a cache's `update`, with SDPA
attention (Llama-like decoders, the embedded SmolLM2 among them; `packable`); the decoders run
each part alone for others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.modeling_utils import AttentionInterface

_ATTENTION = "opinionbench_packed_parts"


@dataclass
class Part:
    """One group of rows of a packed forward: its cache (before the forward), its new tokens
    ([rows, width], left-padded), their position ids, and its mask over cache and new columns."""

    cache: Any
    ids: torch.Tensor
    positions: torch.Tensor
    mask: torch.Tensor  # [rows, columns so far + width]
    # where else each layer's new keys and values go (another part's cache, its row, its columns),
    # written before that part's own: a shared prefix computed in the forward that first reads it
    fills: list[tuple[Any, int, slice]] = field(default_factory=list)


class _PerPart:
    """Each part's keys (or values) after a layer's update, passed from the cache to attention."""

    def __init__(self, tensors: list[torch.Tensor], masks: list[Any], shapes: list[tuple[int, int]]) -> None:
        self.tensors, self.masks, self.shapes = tensors, masks, shapes


class _PartsCache:
    """The cache the model's layers see in a packed forward: each layer's keys and values, computed
    for all parts' tokens as one row, are cut into parts and written into each part's own cache."""

    def __init__(self, parts: Sequence[Part], masks: list[Any]) -> None:
        self.parts, self.masks = parts, masks
        self.shapes = [tuple(p.ids.shape) for p in parts]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs):
        keys, values = [], []
        for part, (k, v) in zip(self.parts, zip(_split(key_states, self.shapes), _split(value_states, self.shapes))):
            k, v = part.cache.update(k, v, layer_idx)
            for cache, row, columns in part.fills:
                cache.layers[layer_idx].keys[row, :, columns] = k[0]
                cache.layers[layer_idx].values[row, :, columns] = v[0]
            keys.append(k)
            values.append(v)
        return _PerPart(keys, self.masks, self.shapes), _PerPart(values, self.masks, self.shapes)


def _split(states: torch.Tensor, shapes: list[tuple[int, int]]) -> Iterator[torch.Tensor]:
    """[1, heads, sum of rows*width, dim] cut into each part's [rows, heads, width, dim]."""
    start = 0
    for rows, width in shapes:
        yield states[0, :, start:start + rows * width].unflatten(1, (rows, width)).transpose(0, 1)
        start += rows * width


def _parts_attention(module: Any, query: torch.Tensor, key: Any, value: Any, attention_mask: Any, **kwargs):
    """Attention part by part, joined back into one row ([1, tokens, heads, dim])."""
    outs = []
    for q, k, v, mask, (rows, width) in zip(_split(query, key.shapes), key.tensors, value.tensors, key.masks,
                                            key.shapes):
        if q.device.type == "cpu":
            out = matmul_attention(q, k, v, mask, kwargs.get("scaling") or q.shape[-1] ** -0.5)
        else:
            out, _ = sdpa_attention_forward(module, q, k, v, mask, **kwargs)  # [rows, width, heads, dim]
        outs.append(out.reshape(rows * width, *out.shape[2:]))
    return torch.cat(outs).unsqueeze(0), None


def matmul_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor,
                      scaling: float) -> torch.Tensor:
    """Softmax attention as two batched matmuls, each key/value head with its group of query heads
    stacked as one matrix ([rows, heads, width, dim] queries, [rows, kv heads, columns, dim] keys and
    values, a [rows, 1, 1, width, columns] additive mask, `additive`); returns [rows, width, heads, dim].

    Why not torch's SDPA: on the CPU its flash kernel runs these short rows (1-200 queries over
    ~250 columns, head dim 64) block by block at 60-90% of the speed of this (measured for 1-32
    rows of 1-190 queries); the numbers agree within float rounding (~5e-7)."""
    rows, heads, width, dim = query.shape
    kv_heads, columns = key.shape[1], key.shape[2]
    group = heads // kv_heads
    scores = torch.matmul(query.reshape(rows, kv_heads, group * width, dim), key.transpose(-1, -2))
    scores = scores.view(rows, kv_heads, group, width, columns).mul_(scaling).add_(mask)
    probs = torch.softmax(scores, dim=-1).view(rows, kv_heads, group * width, columns)
    return torch.matmul(probs, value).view(rows, heads, width, dim).transpose(1, 2)


AttentionInterface.register(_ATTENTION, _parts_attention)


def packable(model: Any) -> bool:
    """Whether the model runs its attention through transformers' SDPA interface (its layers then
    call the attention function and the cache this module puts in their place)."""
    return getattr(model.config, "_attn_implementation", None) == "sdpa"


def forward(body: Any, parts: Sequence[Part], last: int | None = None) -> list[torch.Tensor]:
    """The body's last hidden states for every part's new tokens, [rows, width, hidden] each, in one
    forward; each part's cache gains their keys and values, as a forward of that part alone would.
    `last`: only the hidden states of each row's `last` last columns are read (the others come out
    as garbage): the last layer then runs its output projection and MLP on those alone
    (`_only_at`), as every layer's keys and values, all the cache needs, are made before them."""
    config = body.config
    masks = [additive(_mask(p)) if p.ids.device.type == "cpu" else _mask(p) for p in parts]
    ids = torch.cat([p.ids.reshape(-1) for p in parts]).unsqueeze(0)
    positions = torch.cat([p.positions.reshape(-1) for p in parts]).unsqueeze(0)
    with _attention(config, _ATTENTION), _only_at(body, None if last is None else _kept(parts, last)):
        hidden = body(input_ids=ids, position_ids=positions, past_key_values=_PartsCache(parts, masks),
                      use_cache=True).last_hidden_state[0]
    return [h.view(*p.ids.shape, -1) for h, p in zip(torch.split(hidden, [p.ids.numel() for p in parts]), parts)]


def _kept(parts: Sequence[Part], last: int) -> torch.Tensor:
    """Where each row's `last` last columns are among all parts' tokens as one row."""
    index, start = [], 0
    for p in parts:
        rows, width = p.ids.shape
        columns = torch.arange(max(0, width - last), width)
        index.append((start + torch.arange(rows).unsqueeze(1) * width + columns).reshape(-1))
        start += rows * width
    return torch.cat(index)


class _AtRows(torch.nn.Module):
    """A module run on some token positions only ([1, tokens, features] in; zeros elsewhere out)."""

    def __init__(self, inner: Any, index: torch.Tensor, features: int) -> None:
        super().__init__()
        self.inner, self.index, self.features = inner, index, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros((*x.shape[:-1], self.features))
        out[:, self.index] = self.inner(x[:, self.index])
        return out


@contextlib.contextmanager
def _only_at(body: Any, index: torch.Tensor | None) -> Iterator[None]:
    """The last layer's query and output projections and MLP run at `index` only while the block
    runs (the other positions' queries are zeros, their outputs unread garbage); nothing changes
    when index is None or the layer has no `self_attn.o_proj` and `mlp`."""
    layer = body.layers[-1] if hasattr(body, "layers") and len(body.layers) else None
    attention = getattr(layer, "self_attn", None)
    if index is None or not hasattr(attention, "o_proj") or not hasattr(layer, "mlp"):
        yield
        return
    q_proj, o_proj, mlp = getattr(attention, "q_proj", None), attention.o_proj, layer.mlp
    if isinstance(q_proj, torch.nn.Linear):
        attention.q_proj = _AtRows(q_proj, index, q_proj.out_features)
    attention.o_proj = _AtRows(o_proj, index, o_proj.out_features)
    layer.mlp = _AtRows(mlp, index, body.config.hidden_size)
    try:
        yield
    finally:
        attention.o_proj, layer.mlp = o_proj, mlp
        if isinstance(q_proj, torch.nn.Linear):
            attention.q_proj = q_proj


def additive(mask: torch.Tensor) -> torch.Tensor:
    """A [rows, 1, width, columns] boolean mask as `matmul_attention` adds it, made once a forward
    rather than once a layer: 0 where seen, -inf where not, [rows, 1, 1, width, columns]. A query
    that sees no column (a pad with nothing before it) sees all of them instead, so its (unread)
    output stays finite."""
    mask = mask | ~mask.any(dim=-1, keepdim=True)
    return torch.zeros(mask.shape, dtype=torch.float32).masked_fill_(~mask, float("-inf")).unsqueeze(2)


def _mask(part: Part) -> torch.Tensor:
    """[rows, 1, width, columns]: each new token sees the real columns before it and itself (the
    cache's columns all come before the new ones)."""
    rows, width = part.ids.shape
    columns = part.mask.shape[1]
    causal = torch.arange(columns) <= torch.arange(columns - width, columns).unsqueeze(1)  # [width, columns]
    return (part.mask.bool()[:, None, None, :] & causal).contiguous()


@contextlib.contextmanager
def _attention(config: Any, name: str) -> Iterator[None]:
    """The model's attention implementation set to `name` while the block runs."""
    saved = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = saved
