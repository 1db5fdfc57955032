"""KV caches for the `hf` backend's batched paths that grow in place instead of by copying.

Why: transformers' `DynamicLayer.update` concatenates each step's keys and values onto the
whole cache, so every decoding step copies every row's cache (32 rows x ~140 tokens x 30
layers: ~200 MB a step for SmolLM2-135M), and a fresh allocation of that size pays page faults
on top. On the 2-core CPU this copying was a third of the time of `sequence` sampling and most
of a `verbalized` step. Here each layer's keys and values are views of buffers with room to
spare: a step writes its columns in place, a buffer grows (doubling) only when full, and a
batch's cache is assembled from its rows' prefix caches with one copy. Rows have room to spare
too: sampled rows that split are added by copying only the rows added (`append_rows`), where a
gather of all rows (`batch_select_indices`) copied the whole batch's cache at every step.

The numbers do not move: attention reads the same keys and values (a strided view instead of
a fresh tensor), so results are bit-for-bit those of the plain cache.

Only for models whose every layer is a plain full-attention `DynamicLayer` (Llama-like: the
embedded SmolLM2); others (sliding-window, hybrid) keep transformers' own layers (`growable`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

if TYPE_CHECKING:
    import torch


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose `keys`/`values` are the first `rows` rows and `length` columns of
    larger buffers: columns are written in place as tokens come, rows are added by copying only
    the rows added (`append_rows`)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int, rows: int | None = None) -> None:
        super().__init__()
        self._keys, self._values, self.length = keys, values, length
        self.rows = keys.shape[0] if rows is None else rows
        self.device, self.is_initialized = keys.device, True
        self._view()

    def _view(self) -> None:
        self.keys = self._keys[:self.rows, :, :self.length]
        self.values = self._values[:self.rows, :, :self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        n = key_states.shape[-2]
        if self.length + n > self._keys.shape[2]:
            self._grow(self.length + n)
        self._keys[:self.rows, :, self.length:self.length + n] = key_states
        self._values[:self.rows, :, self.length:self.length + n] = value_states
        self.length += n
        self._view()
        return self.keys, self.values

    def _grow(self, needed: int) -> None:
        self._resize(self._keys.shape[0], max(needed, 2 * self._keys.shape[2]))

    def _resize(self, rows: int, columns: int) -> None:
        """Buffers with room for `rows` rows and `columns` columns, holding the filled ones (the
        rest is written before it is read)."""
        keys, values = (buffer.new_empty((rows, buffer.shape[1], columns, buffer.shape[3]))
                        for buffer in (self._keys, self._values))
        keys[:self.rows, :, :self.length] = self.keys
        values[:self.rows, :, :self.length] = self.values
        self._keys, self._values = keys, values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows at `indices` (a row given k times is repeated): one gather of the filled columns."""
        self._keys, self._values = self._keys[indices], self._values[indices]
        self.rows = len(indices)
        self._view()

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._keys = self._keys[:self.rows].repeat_interleave(repeats, dim=0)
        self._values = self._values[:self.rows].repeat_interleave(repeats, dim=0)
        self.rows = self._keys.shape[0]
        self._view()

    def append_rows(self, parents: list[int]) -> None:
        """Copies of the rows at `parents` added after the rows: only those rows are copied, into
        room kept after the rows (made, doubling, when there is none), each run of copies of one
        row written straight from it (a gather would allocate and fill a temporary first)."""
        needed = self.rows + len(parents)
        if needed > self._keys.shape[0]:
            self._resize(max(needed, 2 * self._keys.shape[0]), self._keys.shape[2])
        start = self.rows
        for parent, run in itertools.groupby(parents):
            stop = start + len(list(run))
            for buffer in (self._keys, self._values):
                buffer[start:stop, :, :self.length] = buffer[parent:parent + 1, :, :self.length]
            start = stop
        self.rows = needed
        self._view()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("GrowingLayer.crop takes a negative count of columns to drop")
        self.length -= abs(tokens_to_remove)
        self._view()

    def reset(self) -> None:
        self.length = 0
        self._view()


@contextlib.contextmanager
def grouped_attention() -> Iterator[None]:
    """While the block runs, SDPA attention reads the cache's own key/value heads, even under a
    padding mask, instead of transformers' copy of them repeated over the query heads.

    Why: SmolLM2 has 3 key/value heads for 9 query heads; with a mask and more than one new token
    per row (a prompt, a forced JSON chunk), transformers' `sdpa_attention_forward` repeats the
    whole cache 3x (`repeat_kv`) in every layer, each step: for 32 rows of ~250 tokens a GB of
    copies a step (a `verbalized` batch took 4-18% longer in A-B-B-A runs). torch's CPU SDPA with
    `enable_gqa` reads the same numbers in the same order (bit for bit, tests/test_inference_hf.py);
    transformers only asks for it without a mask because CUDA kernels then fall back to the math
    one, so this is for the CPU. One new token per row already avoids the copy (`pack_gqa`).
    transformers reads its switch for this, `TRANSFORMERS_SDPA_FORCE_GQA`, on every call."""
    key = "TRANSFORMERS_SDPA_FORCE_GQA"
    saved = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[key]
        else:
            os.environ[key] = saved


def growable(config: Any) -> bool:
    """Whether the model's cache is all plain full-attention layers (the ones `GrowingLayer` replaces)."""
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=config).layers)


def stacked_cache(config: Any, caches: Sequence[Any], masks: Sequence[torch.Tensor], spare: int,
                  dtype: torch.dtype, spare_rows: int = 0) -> DynamicCache:
    """One cache of growing layers for the rows of several caches of different widths (None: no
    tokens yet), each right-aligned in the widest with the columns before it zero (masked by
    `masks`, each cache's [rows, width]), and `spare` empty columns after, written in one copy;
    room for `spare_rows` more rows (`GrowingLayer.append_rows`; memory not touched until used)."""
    import torch

    width = max(m.shape[1] for m in masks)
    rows = sum(m.shape[0] for m in masks)
    heads = config.num_key_value_heads
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    layers = []
    for j in range(len(DynamicCache(config=config).layers)):
        keys = torch.empty((rows + spare_rows, heads, width + spare, dim), dtype=dtype)
        values = torch.empty((rows + spare_rows, heads, width + spare, dim), dtype=dtype)
        keys[:rows, :, :width], values[:rows, :, :width] = 0, 0
        start = 0
        for cache, m in zip(caches, masks):
            n, w = m.shape
            if cache is not None and w:
                keys[start:start + n, :, width - w:width] = cache.layers[j].keys
                values[start:start + n, :, width - w:width] = cache.layers[j].values
            start += n
        layers.append(GrowingLayer(keys, values, width, rows))
    return _cache_of(config, layers)


def expanded_cache(config: Any, prefix: Any, rows: int, spare: int) -> DynamicCache:
    """A one-row prefix cache repeated over `rows` rows with `spare` empty columns after it, one copy
    (instead of a deep copy, a repeat and the first step's concatenation)."""
    layers = []
    for layer in prefix.layers:
        n, heads, width, dim = layer.keys.shape
        keys = layer.keys.new_empty((rows, heads, width + spare, dim))
        values = layer.values.new_empty((rows, heads, width + spare, dim))
        keys[:, :, :width] = layer.keys
        values[:, :, :width] = layer.values
        layers.append(GrowingLayer(keys, values, width))
    return _cache_of(config, layers)


def _cache_of(config: Any, layers: list[GrowingLayer]) -> DynamicCache:
    cache = DynamicCache(config=config)
    cache.layers = layers
    return cache
