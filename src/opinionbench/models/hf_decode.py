"""Batched decoding for the `hf` backend: many prompts' replies decoded together on one KV cache.

Why batched: a decoding step for one row is bound by reading the weights (and by per-op
overhead), so rows added to it are nearly free until the step becomes compute-bound; and
prompts that share a token prefix (system prompt, persona, few-shot block) run it once.

How: the rows of a batch are left-padded with masks and each row keeps its own position ids,
so a row's numbers do not depend on what else is in its batch beyond float rounding; each
step's keys and values are written into the batch's cache in place (hf_cache.py: a plain cache
copies every row's whole cache each step, which cost more than the step's matmuls); the
constrained JSON of `verbalized` (json_grammar.py) is followed per row, reading only the digit
rows of the LM head; free text (`sequence`) picks each token as `model.generate` does
(top_k=0, top_p=1), each sampled request drawing from its own seeded `torch.Generator`, and
its n samples share one row of the cache for as long as their tokens agree (short answers
mostly do: 32 requests x 8 samples run 32 rows at their first step and ~145-175 at the next
ones instead of 256); a row that splits keeps its place and its new rows are copies added
after the rows, so a step copies the caches of the rows added, not of all rows; attention
reads the cache's own key/value heads (hf_cache.py). A batch's prompts run in groups that pad
each other little (`_forwards`); where the model allows, several groups, their shared prefix and
the decoding steps of rows already started run as one packed forward (hf_packed.py), each group
on its own cache.

Why not `model.generate` with a logits processor: it draws every sampled row from the global
random stream (a request's samples would depend on its batch), it cannot feed a forced chunk
of several tokens in one step, and it has no notion of prefixes shared across prompts.

The tests and benchmarks check this against a plain reference that runs each prompt alone
(tests/hf_reference.py).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opinionbench.models.base import Failure, GenerationRequest, Prompt
from opinionbench.models.json_grammar import json_program, schema_letters

if TYPE_CHECKING:
    import torch


class DecodingModel(Protocol):
    """What the decoder uses of a loaded backend (`HFBackend`)."""

    model: Any  # the transformers causal LM (its config and generation config)
    body: Any  # the transformer without its LM head
    head: Any  # the LM head
    tokenizer: Any
    device: str
    pad_id: int
    batch_size: int  # prompts per forward
    generation_batch_size: int  # rows decoded together
    digits: dict[str, int] | None  # json_grammar.digit_ids
    growing: bool  # caches written in place (hf_cache.growable)
    grouped: bool  # attention on the cache's own key/value heads (hf_cache.grouped_attention)

    def encode(self, prompt: Prompt) -> list[int]: ...

    def prefix_groups(self, prompts: Sequence[Prompt], encoded: list[list[int]]) -> list[tuple[list[int], int]]: ...

    def prefix_cache(self, prefix: list[int]) -> Any: ...

    def count_tokens(self, n: int) -> None: ...


def constrained_letters(backend: DecodingModel, request: GenerationRequest) -> list[str] | None:
    """The letters of a greedy request whose reply follows the JSON grammar, else None (free text)."""
    if request.temperature != 0 or backend.digits is None:
        return None
    return schema_letters(request.json_schema)


def eos_ids(backend: DecodingModel) -> set[int]:
    """The tokens that end a reply, as `model.generate` reads them from the generation config."""
    eos = backend.model.generation_config.eos_token_id
    return set() if eos is None else set(eos if isinstance(eos, list) else [eos])


def generate(backend: DecodingModel, requests: Sequence[GenerationRequest]) -> list[list[str] | Failure]:
    """Replies to `requests`, `generation_batch_size` rows decoded at a time (call it under
    `torch.inference_mode()` on the backend's device)."""
    encoded = [backend.encode(r.prompt) for r in requests]
    prefixes = _SharedPrefixes(backend, [r.prompt for r in requests], encoded)
    constrained = [i for i, r in enumerate(requests) if constrained_letters(backend, r)]
    free = sorted(set(range(len(requests))) - set(constrained))
    decoder = _Decoder(backend, prefixes)
    out: list[list[str] | Failure] = [Failure("not computed")] * len(requests)
    for batch in _batches(backend.generation_batch_size, requests, constrained, prefixes):
        for i, text in zip(batch, decoder.constrained([requests[i] for i in batch], batch)):
            out[i] = [text] * requests[i].n
    for batch in _batches(backend.generation_batch_size, requests, free, prefixes):
        for i, texts in zip(batch, decoder.free([requests[i] for i in batch], batch)):
            out[i] = texts
    return out


def _batches(limit: int, requests: Sequence[GenerationRequest], indices: list[int],
             prefixes: _SharedPrefixes) -> list[list[int]]:
    """`indices` in batches of at most `limit` rows, sorted by the length left to run after the
    shared prefix so padding is small. A sampled request takes n rows and is never split: its n
    samples draw from one generator, as `model.generate` draws them."""
    batches: list[list[int]] = []
    batch: list[int] = []
    size = 0
    for i in sorted(indices, key=lambda i: (len(prefixes.suffix(i)), i)):
        rows = _rows_of(requests[i])
        if batch and size + rows > limit:
            batches.append(batch)
            batch, size = [], 0
        batch.append(i)
        size += rows
    return batches + ([batch] if batch else [])


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

    def regroup(self, parents: list[int], in_place: bool) -> list[int]:
        """Rows for the next step, new row j continuing row `parents[j]`, with as little copying
        as can be (`in_place`: the cache is written in place, hf_cache.GrowingLayer): each row's
        first continuation stays where it is and each further one is a copy of it added after the
        rows (one row's cache copied, not the whole batch's, as `select` would); a row continued
        by none stays (fed a pad, read by none) until `_idle_enough`, then all rows are gathered
        in order (always, when not `in_place`). Returns where each new row is."""
        import torch

        count = len(self.position)
        place, kept, added = [0] * len(parents), set(), []
        for j, parent in enumerate(parents):
            if parent in kept:
                place[j] = count + len(added)
                added.append(parent)
            else:
                kept.add(parent)
                place[j] = parent
        if not in_place or _idle_enough(count - len(kept), count + len(added)):
            if parents != list(range(count)):
                self.select(parents)
            return list(range(len(parents)))
        if added:
            at = torch.tensor(added, dtype=torch.long, device=self.mask.device)
            for layer in self.cache.layers:
                layer.append_rows(added)
            self.mask = torch.cat([self.mask, self.mask[at]])
            self.position = torch.cat([self.position, self.position[at]])
            if self.hidden is not None:
                self.hidden = torch.cat([self.hidden, self.hidden[at]])
        return place

    def retract(self, i: int, n: int) -> None:
        """Take back row i's last n tokens (a guess that missed): their columns are masked out and
        its positions count on from before them, as if they were never fed. They are the row's
        last n columns, since a feed right-aligns every row."""
        self.mask[i, self.mask.shape[1] - n:] = 0
        self.position[i] -= n


@dataclass
class _Cohort:
    """Rows of `_Decoder.constrained` that started together (one forward of prompts): their cache
    and the request each row answers."""

    rows: _Rows
    order: list[int]


class _SharedPrefixes:
    """The token prefix each prompt of a `generate` call shares with its group
    (`prefix_groups`), its KV cache computed once, on first use, for every batch."""

    def __init__(self, backend: DecodingModel, prompts: Sequence[Prompt], encoded: list[list[int]]) -> None:
        self.backend, self.encoded = backend, encoded
        self.group, self.length = [0] * len(prompts), [0] * len(prompts)
        for g, (rows, n) in enumerate(backend.prefix_groups(prompts, encoded)):
            for r in rows:
                self.group[r], self.length[r] = g, n
        self._caches: dict[int, Any] = {}

    def suffix(self, i: int) -> list[int]:
        return self.encoded[i][self.length[i]:]

    def cache(self, i: int, computed: bool = True) -> Any:
        """The KV cache of prompt i's shared prefix (one row), None when it shares none, or when
        it is not computed yet and `computed` is False (the caller computes it: `computed_as`)."""
        if not self.length[i]:
            return None
        g = self.group[i]
        if g not in self._caches and computed:
            self._caches[g] = self.backend.prefix_cache(self.prefix(i))
        return self._caches.get(g)

    def prefix(self, i: int) -> list[int]:
        return self.encoded[i][:self.length[i]]

    def computed_as(self, i: int, cache: Any) -> None:
        """Prompt i's group's prefix cache, computed by the caller."""
        self._caches[self.group[i]] = cache


class _Decoder:
    """The decoding loops of one `generate` call, over the batches `generate` makes."""

    def __init__(self, backend: DecodingModel, prefixes: _SharedPrefixes) -> None:
        from opinionbench.models import hf_packed

        self.backend, self.prefixes = backend, prefixes
        # several sets of rows in one forward (hf_packed.py); else one forward each
        self.packed = backend.growing and hf_packed.packable(backend.model)
        # prefixes the next packed forward computes: group -> (a prompt of it, where its rows want it)
        self._unfilled: dict[int, tuple[int, list[tuple[Any, int, slice]]]] = {}

    def constrained(self, requests: list[GenerationRequest], batch: list[int]) -> list[str]:
        """Verbalized JSON replies of a batch: every row follows its own `json_program` and only the
        digit rows of the LM head are applied. Each key is fed with a guessed `0.`, and after the
        first number the tenths digit of the number before (`json_program(guess=True)`): the
        digits before and after the guess are read from the same forward (the hidden states of a
        feed's last `_READ_BACK` tokens are kept); a row whose guess missed masks those columns
        out (`_Rows.retract`).

        The batch's prompts run in groups (`_prompt_forwards`), the longest first; each group's rows
        (a "cohort": their own cache, chunks left-padded among them) start decoding at the next
        forward, and every forward also feeds each started cohort its next chunks (`_feed_parts`:
        one packed forward where the model allows, hf_packed.py). So decoding steps ride along
        with the later prompts instead of running as small forwards after them all, and a
        cohort's attention spans its own columns only. A prompt and its first forced chunk run
        in one forward."""
        import torch

        b = self.backend
        digit = b.digits or {}
        digits = list(digit.values())
        column = {t: j for j, t in enumerate(digits)}
        programs = [json_program(constrained_letters(b, r) or [], b.tokenizer, digit, guess=True) for r in requests]
        feeds = [next(p) for p in programs]
        texts = [""] * len(requests)
        pending = set(range(len(requests)))
        runs = [self.prefixes.suffix(i) + f.tokens for i, f in zip(batch, feeds)]
        starts = self._prompt_forwards(runs)[::-1]  # longest first: they have the most options to decode
        cohorts: list[_Cohort] = []  # started, with rows still decoding
        while pending:
            parts = []
            for cohort in cohorts:
                keep = _compact(cohort.rows, cohort.order, pending)
                if keep is not None:
                    cohort.order = [cohort.order[i] for i in keep]
                for i, k in enumerate(cohort.order):
                    if k in pending and feeds[k].retract:
                        cohort.rows.retract(i, feeds[k].retract)
                parts.append((cohort.rows, [feeds[k].tokens if k in pending else [b.pad_id] for k in cohort.order]))
            for begin, stop in (starts.pop(0) if starts else []):
                cohort = _Cohort(self._prompt_rows(batch[begin:stop], runs[begin:stop]), list(range(begin, stop)))
                parts.append((cohort.rows, runs[begin:stop]))
                cohorts.append(cohort)
            self._feed_parts(parts, last=_READ_BACK)
            for cohort in cohorts:
                scores = self._head_at(cohort.rows.hidden, digits)  # [rows, _READ_BACK, digits]
                for i, k in enumerate(cohort.order):
                    if k not in pending:
                        continue
                    try:
                        feeds[k] = programs[k].send(
                            lambda ids, back=0, row=scores[i]: int(torch.argmax(row[-1 - back, [column[t] for t in ids]])))
                    except StopIteration as done:
                        texts[k] = done.value
                        pending.discard(k)
            cohorts = [c for c in cohorts if any(k in pending for k in c.order)]
        return texts

    def free(self, requests: list[GenerationRequest], batch: list[int]) -> list[list[str]]:
        """Free-text replies of a batch, greedy or sampled: one token per sample per step, chosen as
        `model.generate` chooses it (`_next_tokens`, each request's [n, vocab] draw at once), until
        each request's samples have all ended (an end-of-sequence token) or reached its max_tokens.

        Samples with the same tokens so far are the same row: each prompt runs once and its n
        samples start on its one row; each step keeps one row per distinct (prompt, tokens so far)
        (`_next_rows`, placed by `_Rows.regroup`: rows added are copies of their parent row, rows
        no sample reads are fed a pad until they leave) and runs the body and the 49k-row LM
        head on those only (the samples of a short answer mostly agree, so a few rows instead
        of n), the logits then read back out to the n samples. A draw reads every sample's row,
        ended ones included (their pick is dropped), as `model.generate` does: the random stream
        is used alike whatever was picked."""
        import torch

        b = self.backend
        owner = [k for k, r in enumerate(requests) for _ in range(_rows_of(r))]  # request of each sample
        rows = self._start(batch, [[] for _ in batch], room=len(owner) - len(batch))
        generators = [_generator(r, b.device) for r in requests]
        eos = eos_ids(b)
        tokens: list[list[int]] = [[] for _ in owner]
        ended = [False] * len(owner)
        slot = list(owner)  # the row of `rows` each sample's next token is read from
        pending = set(range(len(requests)))
        step = 0
        while True:
            logits = b.head(rows.hidden[:, -1]).float()
            chosen: dict[int, int] = {}
            for k, span in _spans(owner):
                if k not in pending:
                    continue
                at = torch.tensor(slot[span], dtype=torch.long)
                for s, token in zip(range(span.start, span.stop),
                                    _next_tokens(logits[at], requests[k], generators[k]).tolist()):
                    if not ended[s]:
                        tokens[s].append(token)
                        ended[s] = token in eos
                        chosen[s] = token
                if step + 1 >= requests[k].max_tokens or all(ended[span]):
                    pending.discard(k)
            step += 1
            if not pending:
                break
            slot, parents, fed = _next_rows(owner, slot, chosen, ended, pending)
            place = rows.regroup(parents, b.growing)
            chunks = [[b.pad_id] for _ in rows.position]  # a row no sample reads is fed a pad
            for j, token in zip(place, fed):
                chunks[j] = [token]
            slot = [place[j] for j in slot]
            self._feed_parts([(rows, chunks)])
        return [[b.tokenizer.decode(tokens[s], skip_special_tokens=True) for s, o in enumerate(owner) if o == k]
                for k in range(len(requests))]

    def _start(self, batch: list[int], first: list[list[int]], room: int = 0, last: int = 1) -> _Rows:
        """The batch's prompts run, at most `batch_size` prompts per forward, split where padding
        would cost more than another forward (`_forwards`; the batch is sorted by length),
        then joined into one set of rows. Each row's shared prefix comes from its group's cache; the
        rest of its prompt, then `first` (tokens forced before any choice), is computed here.
        `room`: rows the cache keeps room for beyond the batch's (`_Rows.regroup` adds them);
        `last`: hidden states kept per row (`_feed`)."""
        import torch

        runs = [self.prefixes.suffix(i) + extra for i, extra in zip(batch, first)]
        forwards = self._prompt_forwards(runs)
        one = len(forwards) == 1 and len(forwards[0]) == 1
        parts = []
        for together in forwards:
            some = [self._prompt_rows(batch[start:stop], runs[start:stop], room if one else 0)
                    for start, stop in together]
            self._feed_parts([(rows, runs[start:stop]) for rows, (start, stop) in zip(some, together)], last)
            parts += some
        if len(parts) == 1:
            return parts[0]
        cache, mask = self._stacked([p.cache for p in parts], [p.mask for p in parts], spare=_ROOM, spare_rows=room)
        return _Rows(cache, mask, torch.cat([p.position for p in parts]), torch.cat([p.hidden for p in parts]))

    def _prompt_forwards(self, runs: list[list[int]]) -> list[list[tuple[int, int]]]:
        """Groups (start, stop) of a batch's prompts (`runs`, the tokens each feeds, sorted by length)
        that share one padded layout, at most `batch_size` prompts each, split where padding would
        cost more than another forward or part (`_forwards`; a part costs far less than a forward,
        but on the CPU 4 to 48 tokens a part measured the same), and which groups run in one
        forward: packed, as many as `_PACKED_TOKENS` holds; else one group a forward."""
        b = self.backend
        groups = _forwards([len(r) for r in runs], b.batch_size, _forward_cost(b.device))
        if not self.packed:
            return [[g] for g in groups]
        return _together(groups, [(stop - start) * len(runs[stop - 1]) for start, stop in groups], _PACKED_TOKENS)

    def _prompt_rows(self, some: list[int], chunks: list[list[int]], room: int = 0) -> _Rows:
        """Rows for prompts `some` before the rest of each is fed (`chunks`): each one's shared
        prefix cache, right-aligned in one cache with room for the chunks (and `room` more rows).
        Packed, a prefix not computed yet is left to the next `_feed_parts`, which computes it in
        the same forward as these rows' chunks and writes it into their columns layer by layer
        (a 57-token forward of its own cost ~0.13 s, as much as ~100 tokens in a big one)."""
        import torch

        prefixes = self.prefixes
        lengths = [prefixes.length[i] for i in some]
        caches = [prefixes.cache(i, computed=not self.packed) for i in some]
        cache, mask = self._stacked(caches, [torch.ones((1, n), dtype=torch.long) for n in lengths],
                                    spare=max(len(c) for c in chunks) + _ROOM, spare_rows=room)
        width = mask.shape[1]
        for row, (i, n, c) in enumerate(zip(some, lengths, caches)):
            if n and c is None:
                self._unfilled.setdefault(prefixes.group[i], (i, []))[1].append((cache, row, slice(width - n, width)))
        return _Rows(cache, mask, torch.tensor(lengths, dtype=torch.long))

    def _stacked(self, caches: Sequence[Any], masks: Sequence[torch.Tensor], spare: int,
                 spare_rows: int = 0) -> tuple[Any, torch.Tensor]:
        """One cache and mask for the rows of several caches of different widths (a prompt's shared
        prefix, None for none; a group of rows already run): each right-aligned in the widest, the
        columns before it zero and masked, so every row's last token stays the last column. Keys
        carry their rotary positions, so the alignment moves nothing. `masks`: each cache's
        [rows, width] mask; `spare`, `spare_rows`: room for the tokens fed next and for rows added
        (growing caches)."""
        import torch
        from transformers import DynamicCache

        from opinionbench.models import hf_cache

        config = self.backend.model.config
        width = max(m.shape[1] for m in masks)
        mask = torch.cat([torch.nn.functional.pad(m, (width - m.shape[1], 0)) for m in masks])
        if self.backend.growing:
            return hf_cache.stacked_cache(config, caches, masks, spare, self.backend.model.dtype, spare_rows), mask
        some = next((c for c, m in zip(caches, masks) if c is not None and m.shape[1]), None)
        if some is None:
            return DynamicCache(config=config), mask
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
        return DynamicCache(layers, config=config), mask

    def _feed(self, rows: _Rows, chunks: list[list[int]], last: int = 1) -> None:
        """Each row's next tokens (one or more, as many as it needs) run on top of its cache: the
        chunks are left-padded to one width with the pads masked, so every row's last token is the
        last column, and each row's positions continue its own count. The hidden states after the
        `last` last columns are kept ([rows, last, hidden]; zeros before a feed narrower than that)."""
        from opinionbench.models import hf_cache

        b = self.backend
        part = self._part(rows, chunks)
        with hf_cache.grouped_attention() if part.ids.shape[1] > 1 and b.grouped else contextlib.nullcontext():
            hidden = b.body(input_ids=part.ids, attention_mask=part.mask, position_ids=part.positions,
                            past_key_values=rows.cache, use_cache=True).last_hidden_state
        self._fed(rows, chunks, hidden, last)

    def _feed_parts(self, parts: list[tuple[_Rows, list[list[int]]]], last: int = 1) -> None:
        """`_feed` for several sets of rows, each on its own cache: in one packed forward where the
        model allows it (hf_packed.py, with the shared prefixes `_prompt_rows` left to it), else
        one forward each."""
        from opinionbench.models import hf_packed

        b = self.backend
        if not self.packed:
            for rows, chunks in parts:
                self._feed(rows, chunks, last)
            return
        prefixes = [self._prefix_part(i, fills) for i, fills in self._unfilled.values()]
        self._unfilled = {}
        hidden = hf_packed.forward(b.body, prefixes + [self._part(rows, chunks) for rows, chunks in parts], last)
        for (rows, chunks), h in zip(parts, hidden[len(prefixes):]):
            self._fed(rows, chunks, h, last)

    def _prefix_part(self, i: int, fills: list[tuple[Any, int, slice]]) -> Any:
        """A packed forward's part computing prompt i's shared prefix into a cache of its own (kept
        for the rows that start later) and, layer by layer, into the columns `fills` name."""
        import torch

        from opinionbench.models import hf_cache
        from opinionbench.models.hf_packed import Part

        ids = self.prefixes.prefix(i)
        b = self.backend
        empty = torch.ones((1, 0), dtype=torch.long)
        cache = hf_cache.stacked_cache(b.model.config, [None], [empty], len(ids), b.model.dtype)
        self.prefixes.computed_as(i, cache)
        b.count_tokens(len(ids))
        return Part(cache, torch.tensor([ids]), torch.arange(len(ids)).unsqueeze(0),
                    torch.ones((1, len(ids)), dtype=torch.long), fills)

    def _part(self, rows: _Rows, chunks: list[list[int]]) -> Any:
        """The rows' chunks left-padded to one width ([rows, width] ids and position ids) and the
        rows' mask extended by them (`hf_packed.Part`)."""
        import torch

        from opinionbench.models.hf_packed import Part

        width = max(len(c) for c in chunks)
        ids = torch.full((len(chunks), width), self.backend.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunks), width), dtype=torch.long)
        positions = rows.position.unsqueeze(1).repeat(1, width)  # a pad's position is never attended to
        for i, chunk in enumerate(chunks):
            ids[i, width - len(chunk):] = torch.tensor(chunk, dtype=torch.long)
            mask[i, width - len(chunk):] = 1
            positions[i, width - len(chunk):] += torch.arange(len(chunk))
        rows.mask = torch.cat([rows.mask, mask], dim=1)
        return Part(rows.cache, ids, positions, rows.mask)

    def _fed(self, rows: _Rows, chunks: list[list[int]], hidden: torch.Tensor, last: int) -> None:
        """After a feed: the hidden states of the last `last` columns kept, positions moved on."""
        import torch

        width = hidden.shape[1]
        rows.hidden = torch.nn.functional.pad(hidden[:, -last:], (0, 0, max(0, last - width), 0))
        rows.position = rows.position + torch.tensor([len(c) for c in chunks], dtype=torch.long)
        self.backend.count_tokens(sum(len(c) for c in chunks))

    def _head_at(self, hidden: torch.Tensor, ids: list[int]) -> torch.Tensor:
        """LM-head logits of the given token ids only, [..., len(ids)]: a choice among digits
        needs 11 rows of the head, not its 49k."""
        import torch.nn.functional as F

        head = self.backend.head
        bias = getattr(head, "bias", None)
        return F.linear(hidden, head.weight[ids], None if bias is None else bias[ids])


# What one more forward of a batch's prompts costs, in padded tokens. On the 2-core CPU a padded
# token costs what a real one does (~1.3 ms) and a forward carries a fixed cost on top (reading
# the weights, per-op overhead; larger for short prompts), so a split that pads a prompt by more
# than about this many tokens loses to one more forward. Measured with SmolLM2: 16 verbalized
# prompts in 2 forwards of 8 computed 18% more tokens than the prompts have, split this way 7
# forwards computed 1.3% more and the batch took 7% less time (32 prompts: 3% less); for 32
# sequence prompts any cost from 4 to 40 tokens gave the same time within noise, one forward per
# prompt took 1.6x as long and one forward for all 1.7x. Elsewhere (an accelerator, not measured
# here) the fewest forwards of `batch_size` prompts, as before.
_FORWARD_COST_TOKENS = {"cpu": 12}
_ACCELERATOR_FORWARD_COST_TOKENS = 4096


def _forward_cost(device: str) -> int:
    return _FORWARD_COST_TOKENS.get(str(device).split(":")[0], _ACCELERATOR_FORWARD_COST_TOKENS)


def _forwards(lengths: list[int], most: int, cost: int) -> list[tuple[int, int]]:
    """Consecutive runs of `lengths` (the tokens each prompt feeds; sorted, so neighbours pad each
    other little), at most `most` prompts each, that compute the fewest tokens counting each run
    padded to its longest prompt and `cost` tokens for each run: the cheapest split, by dynamic
    programming over where each run ends. Returns (start, stop) of each run, in order."""
    best = [0] + [None] * len(lengths)  # best[j]: cheapest cost of the first j prompts
    cut = [0] * (len(lengths) + 1)  # where the last run of that cheapest split starts
    for stop in range(1, len(lengths) + 1):
        widest = 0
        for start in range(stop - 1, max(0, stop - most) - 1, -1):
            widest = max(widest, lengths[start])
            total = best[start] + (stop - start) * widest + cost
            if best[stop] is None or total < best[stop]:
                best[stop], cut[stop] = total, start
    runs, stop = [], len(lengths)
    while stop:
        runs.append((cut[stop], stop))
        stop = cut[stop]
    return runs[::-1]


def _together(groups: list[tuple[int, int]], tokens: list[int], most: int) -> list[list[tuple[int, int]]]:
    """Consecutive groups (start, stop) of prompts, `tokens` each, joined into forwards of at most
    `most` tokens (a group larger than that alone)."""
    forwards: list[list[tuple[int, int]]] = []
    size = most
    for group, n in zip(groups, tokens):
        if size + n > most:
            forwards.append([])
            size = 0
        forwards[-1].append(group)
        size += n
    return forwards


# The most tokens a packed forward of prompts takes (hf_packed.py): measured with SmolLM2 on the
# 2-core CPU, 32 verbalized prompts (~4,400 tokens) ran 4-9% faster in one forward than in forwards
# of 8 prompts (later forwards carrying the decoding steps of the rows started); the activations
# of 8k tokens are ~50 MB a [tokens, 1536] tensor for SmolLM2, several times that for larger models.
_PACKED_TOKENS = 8192

_READ_BACK = 4  # hidden states kept per row in `constrained`: a guessed `0.` and tenths, and the token before

_ROOM = 32  # spare cache columns for the steps after a batch's prompts (a growing cache doubles when full)


def _idle_enough(idle: int, rows: int) -> bool:
    """Whether rows no one reads any more (fed a pad meanwhile) are enough of the `rows` to be worth
    gathering the others (a copy of their caches): a quarter of them."""
    return idle >= max(1, rows // 4)


def _compact(rows: _Rows, owners: list[int], pending: set[int]) -> list[int] | None:
    """Rows whose request is done leave the batch once `_idle_enough` (leaving copies the cache);
    until then they are fed a pad and ignored.
    Returns the indices of the rows kept, or None when the batch is left as it is."""
    keep = [i for i, k in enumerate(owners) if k in pending]
    if not _idle_enough(len(owners) - len(keep), len(owners)):
        return None
    rows.select(keep)
    return keep


def _next_rows(owner: list[int], slot: list[int], chosen: dict[int, int], ended: list[bool],
               pending: set[int]) -> tuple[list[int], list[int], list[int]]:
    """The rows of the next step: one per distinct (row so far, token chosen) of the samples still
    running, in the order of their first sample. Returns each sample's row in it (an ended sample
    of a request still drawing reads its request's first row: its pick is dropped), the row each
    new row continues (its parent in `rows`) and the token it is fed."""
    at: dict[tuple[int, int], int] = {}
    parents: list[int] = []
    fed: list[int] = []
    running = [s for s, k in enumerate(owner) if k in pending and not ended[s]]
    new = [0] * len(owner)
    for s in running:
        key = (slot[s], chosen[s])
        if key not in at:
            at[key] = len(parents)
            parents.append(slot[s])
            fed.append(chosen[s])
        new[s] = at[key]
    first: dict[int, int] = {}
    for s in running:
        first.setdefault(owner[s], new[s])
    for s, k in enumerate(owner):
        if k in pending and ended[s]:
            new[s] = first[k]
    return new, parents, fed


def _next_tokens(logits: torch.Tensor, request: GenerationRequest, generator) -> torch.Tensor:
    """The next token of each of a request's rows, as `model.generate` picks it (top_k=0,
    top_p=1): argmax when greedy, else one draw per row from softmax(logits / temperature)."""
    import torch

    if request.temperature == 0:
        return torch.argmax(logits, dim=-1)
    probs = torch.softmax(logits / request.temperature, dim=-1)
    if probs.device.type == "cpu" and _exponentials_match():
        return _draw(probs, generator)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)


def _draw(probs: torch.Tensor, generator) -> torch.Tensor:
    """One draw per row of `probs`: the one `torch.multinomial(probs, 1, generator=generator)`
    makes, from the same random numbers, in a third of the time on the CPU.

    Why: torch draws a single sample as argmax(p / q) with q ~ Exp(1) from `exponential_`, which
    on the CPU computes -log1p(-u) in double one element at a time, ~15 ns each: 5.9 ms for a
    request's 8 x 49k draw, 0.75 s of a 32-question `sequence` call (15% of it). Here the same
    uniforms come from `uniform_` in double (the same stream, consumed alike) and the logarithm
    runs vectorised: 1.7 ms. Used only where `_exponentials_match` saw it give torch's numbers."""
    import torch

    if torch.isnan(probs).any():
        raise ValueError("probability tensor contains nan")  # what torch.multinomial refuses too
    uniforms = torch.empty(probs.shape, dtype=torch.float64, device=probs.device).uniform_(generator=generator)
    exponentials = torch.log1p(uniforms.neg_()).neg_().to(probs.dtype)
    return torch.argmax(probs / exponentials, dim=-1)


@functools.cache
def _exponentials_match() -> bool:
    """Whether `_draw` gives `torch.multinomial`'s draws and leaves the generator where it does, on
    a probe of 8 x 49k draws from one seed (checked once per process: another torch version may
    draw otherwise, and then its own `multinomial` is used)."""
    import torch

    probs = torch.softmax(torch.randn(8, 49152, generator=torch.Generator().manual_seed(1)) * 4, dim=-1)
    ours, theirs = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    same = all(torch.equal(_draw(probs, ours), torch.multinomial(probs, 1, generator=theirs).squeeze(1))
               for _ in range(4))
    return same and torch.equal(ours.get_state(), theirs.get_state())


def _generator(request: GenerationRequest, device: str):
    """A sampled request's own random stream (seeded like `torch.manual_seed(seed)`), None when greedy."""
    import torch

    return torch.Generator(device=device).manual_seed(request.seed) if request.temperature > 0 else None


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
