"""The `hf` backend with the real SmolLM2-135M-Instruct on a handful of sample questions.

One converted model is shared by the module (converted GGUF weights cached under the
project's data/models, so the ~26 s conversion happens once per machine). Checks: every
method x steering gives valid, traceable predictions; the fast path equals the per-option
loop (with shared-prefix KV reuse) and does not depend on the batch size; a second run reuses
what the first computed; bad inputs are one-line errors or recorded failures; batched
generation gives the one-at-a-time replies and seeded samples repeat.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hf_reference import generate_one_at_a_time, per_option_logprobs
from prediction_checks import check_alignment

from opinionbench.elicit import methods
from opinionbench.elicit.base import MethodSettings
from opinionbench.elicit.logprobs import candidates, letter_probabilities
from opinionbench.elicit.sequence import SequenceSettings
from opinionbench.elicit.verbalized import ReplyError, VerbalizedSettings, parse_distribution
from opinionbench.inference.cost import read_cost
from opinionbench.inference.predictions import read_predictions, run_metadata
from opinionbench.inference.cells import cells_to_predict, sample_questions
from opinionbench.inference.runner import InferenceRun
from opinionbench.io import write_parquet
from opinionbench.models.base import GenerationRequest, ModelError, metered
from opinionbench.steering.base import SteeringData
from opinionbench.steering.templates import templates_hash
from opinionbench.survey.build import build_waves

REPO = Path(__file__).resolve().parents[1]
MODELS_CACHE = REPO / "data" / "models"  # shared with `opinionbench infer`: convert once per machine
GROUPS = {"POLPARTY": ["Republican"]}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def smollm2():
    from opinionbench.embedded import SMOLLM2_ID
    from opinionbench.models.hf import HFBackend

    backend = HFBackend("embedded:smollm2", cache_dir=MODELS_CACHE, batch_size=8, threads=2)
    assert backend.model_id == SMOLLM2_ID and backend.revision.startswith("gguf-sha256:")
    return backend


@pytest.fixture(scope="module")
def sample(sample_sav):
    built = build_waves([sample_sav], workers=1)
    return built.questions, built.distributions


@pytest.fixture(scope="module")
def two_qkeys(sample) -> list[str]:
    questions, _ = sample
    return sample_questions(questions, 2, seed=0)


def _run(backend, method, steering, sample, qkeys, tmp_path, settings, groups=GROUPS, chunk_size=16):
    questions, distributions = sample
    data = SteeringData(questions, distributions, k_shots=2)
    run = InferenceRun(backend, method, steering, questions, data, settings, dataset="sample",
                       out_path=tmp_path / "predictions" / f"{method}-{steering}.parquet",
                       parts_dir=tmp_path / "parts" / method / steering, chunk_size=chunk_size)
    summary = run.run(cells_to_predict(distributions, qkeys, groups, steering=steering), progress=False)
    return run, summary, read_predictions(summary.path)


SETTINGS = {
    "logprobs": MethodSettings(option_orders=2),
    "verbalized": MethodSettings(option_orders=1, verbalized=VerbalizedSettings(max_tokens=32)),
    "sequence": MethodSettings(option_orders=1, sequence=SequenceSettings(n=2, temperature=1.0)),
}


@pytest.mark.parametrize("method", ["logprobs", "verbalized", "sequence"])
def test_every_method_and_steering_gives_valid_traceable_predictions(smollm2, sample, two_qkeys, method, tmp_path):
    questions, _ = sample
    n_options = dict(zip(questions["qkey"], questions["options"].map(len)))
    method_templates = methods.get(method).templates
    for steering in ("none", "persona", "few-shot"):
        run, summary, preds = _run(smollm2, method, steering, sample, two_qkeys, tmp_path, SETTINGS[method])
        assert summary.cells == len(preds) == 2 and summary.computed == 2 and summary.reused == 0
        assert set(preds["qkey"]) == set(two_qkeys)
        expected_group = {"none": "Overall"}.get(steering, "Republican")
        assert (preds["group"] == expected_group).all()
        assert (preds["model_id"] == smollm2.model_id).all() and (preds["model_revision"] == smollm2.revision).all()
        assert (preds["method"] == method).all() and (preds["steering"] == steering).all()
        for row in preds.itertuples(index=False):
            item = run.item((row.qkey, row.attribute, row.group))
            assert row.template_hash == templates_hash(*item.context.templates, *method_templates)
            if row.failed:
                assert row.error and len(row.probs) == 0
                continue
            assert len(row.probs) == n_options[row.qkey] and (row.probs >= 0).all()
            assert math.isclose(row.probs.sum(), 1.0, abs_tol=1e-9)
            if method == "logprobs":
                assert 0.0 <= row.out_of_option_mass < 1.0  # recorded, not dropped
            elif method == "sequence":
                assert 0.0 <= row.out_of_option_mass <= 1.0  # share of sampled answers that were no letter
        check_alignment(preds, questions)
        if method == "logprobs":
            assert not preds["failed"].any()
        if method == "verbalized":
            # every reply is kept; a row failed exactly when its reply is not a distribution
            for row in preds.itertuples(index=False):
                assert row.raw_reply is not None
                try:
                    parsed = parse_distribution(row.raw_reply, n_options[row.qkey])
                except ReplyError:
                    assert row.failed and "not a distribution" in row.error
                else:
                    assert not row.failed
                    np.testing.assert_allclose(row.probs, parsed, atol=1e-9)


def _logprob_prompts(sample, qkeys):
    """Persona prompts of two questions (one shared system prompt) and few-shot prompts of one
    question in two option orders (a long shared prefix): the KV-reuse paths of the fast path."""
    from opinionbench.elicit import logprobs
    from opinionbench.steering import steer

    questions, distributions = sample
    data = SteeringData(questions, distributions, k_shots=2)
    rows = questions.set_index("qkey")
    prompts = []
    for steering, keys in (("persona", qkeys), ("few-shot", qkeys[:1])):
        for q in keys:
            from opinionbench.elicit.base import Item

            item = Item(q, "POLPARTY", "Republican", rows.loc[q, "question"], tuple(rows.loc[q, "options"]),
                        steer(steering, data, q, "POLPARTY", "Republican"))
            prompts += logprobs.prompts(item, MethodSettings(option_orders=2))
    return prompts


def test_fast_path_equals_the_per_option_loop_with_shared_prefix_kv_reuse(smollm2, sample, two_qkeys):
    prompts = _logprob_prompts(sample, two_qkeys)
    assert len({p.messages[0] for p in prompts}) == 2  # two groups that share a system prompt
    groups = smollm2.prefix_groups(prompts, [smollm2.encode(p) for p in prompts])
    assert all(prefix > 20 for rows, prefix in groups if len(rows) > 1)  # the prefix really is reused
    fast = smollm2.next_token_logprobs(prompts, candidates(4))
    # the loop pays one full forward per candidate: check two candidates of every prompt
    slow = per_option_logprobs(smollm2, prompts, ["A", " B"])
    for f, s in zip(fast, slow):
        for token, value in s.logprobs.items():
            assert abs(f.logprobs[token] - value) < 1e-4, (token, f.logprobs[token], value)
    # ... and the distributions read from them agree
    assert all(f.exhaustive for f in fast)


def test_results_do_not_depend_on_batch_size_or_prefix_sharing(smollm2, sample, two_qkeys):
    prompts = _logprob_prompts(sample, two_qkeys)[:4]  # the persona prompts: 2 questions x 2 orders
    cands = candidates(5)
    saved = smollm2.batch_size
    try:
        smollm2.batch_size = 8
        batched = smollm2.next_token_logprobs(prompts, cands)
        smollm2.batch_size = 1
        single = smollm2.next_token_logprobs(prompts, cands)
    finally:
        smollm2.batch_size = saved
    unshared = [smollm2.next_token_logprobs([p], cands)[0] for p in prompts]  # alone: no prefix to share
    for a, b, c in zip(batched, single, unshared):
        assert a.logprobs.keys() == b.logprobs.keys() == c.logprobs.keys()
        for token in a.logprobs:  # probabilities: float32 rounding moves a log-prob by ~1e-5 at most
            assert abs(math.exp(a.logprobs[token]) - math.exp(b.logprobs[token])) < 1e-5
            assert abs(a.logprobs[token] - b.logprobs[token]) < 1e-4
            assert abs(a.logprobs[token] - c.logprobs[token]) < 1e-4
        for n in (2, 5):  # the distributions the method reads from them
            pa, _ = letter_probabilities(a, n, "sum")
            pb, _ = letter_probabilities(b, n, "sum")
            np.testing.assert_allclose(pa, pb, atol=1e-5)


def _generation_requests(sample, qkeys) -> list[GenerationRequest]:
    """Real prompts of both generating methods, as their `run` builds them: verbalized (constrained
    JSON) and sequence greedy and seeded-sampled, persona (one shared system prompt) and few-shot
    (a long prefix per question) steering, two option orders: several prefix groups in a batch."""
    from opinionbench.elicit import sequence, verbalized
    from opinionbench.elicit.base import Item
    from opinionbench.steering import steer

    questions, distributions = sample
    data = SteeringData(questions, distributions, k_shots=2)
    rows = questions.set_index("qkey")
    settings = MethodSettings(option_orders=2)
    requests = []
    for steering, keys in (("persona", qkeys), ("few-shot", qkeys[:1])):
        for q in keys:
            item = Item(q, "POLPARTY", "Republican", rows.loc[q, "question"], tuple(rows.loc[q, "options"]),
                        steer(steering, data, q, "POLPARTY", "Republican"))
            requests += [GenerationRequest(p, max_tokens=60, json_schema=verbalized.schema(len(item.options)))
                         for p in verbalized.prompts(item, settings)]
            for p in sequence.prompts(item, settings):
                requests += [GenerationRequest(p, max_tokens=6),
                             GenerationRequest(p, max_tokens=4, temperature=1.0, n=4, seed=sequence._seed(p, 0))]
    return requests


def _generate_with(backend, requests, batch_size: int | None):
    """Replies and tokens computed, `batch_size` rows decoded together (None: the one-at-a-time reference)."""
    saved = backend.generation_batch_size
    backend.generation_batch_size = batch_size or saved
    try:
        with metered() as tokens:
            replies = generate_one_at_a_time(backend, requests) if batch_size is None else backend.generate(requests)
            return replies, tokens[0]
    finally:
        backend.generation_batch_size = saved


def test_batched_generation_gives_the_one_at_a_time_replies_and_seeded_samples_repeat(smollm2, sample, two_qkeys):
    requests = _generation_requests(sample, two_qkeys)
    assert sum(r.json_schema is not None for r in requests) == 6 and sum(r.temperature > 0 for r in requests) == 6
    reference, reference_tokens = _generate_with(smollm2, requests, None)
    # 5 rows a batch: batches mix prefix groups, sampled requests (4 rows) fill them unevenly
    batched, batched_tokens = _generate_with(smollm2, requests, 5)
    for request, ref, got in zip(requests, reference, batched):
        assert len(got) == request.n and all(isinstance(t, str) for t in got)
        if request.temperature == 0:  # greedy: exactly the one-at-a-time strings
            assert got == ref, (request.prompt.messages[-1][1][:60], ref, got)
    verbalized = [got[0] for request, got in zip(requests, batched) if request.json_schema is not None]
    assert all(t.startswith('{"A": ') and t.endswith("}") for t in verbalized)
    # seeded sampling: the same samples with other batch makeups (all at once; each request alone),
    # and the one-at-a-time path's (same generator stream on the same probabilities)
    sampled = [i for i, r in enumerate(requests) if r.temperature > 0]
    together, _ = _generate_with(smollm2, [requests[i] for i in sampled], 64)
    alone, _ = _generate_with(smollm2, [requests[sampled[-1]]], 64)
    assert together == [batched[i] for i in sampled] == [reference[i] for i in sampled]
    assert alone == [batched[sampled[-1]]]
    assert len({tuple(batched[i]) for i in sampled}) > 1  # really sampled, not one fixed reply
    # tokens are metered; the shared prefixes are computed once, so fewer than one at a time
    assert 0 < batched_tokens < reference_tokens


def test_caches_written_in_place_give_the_plain_cache_numbers_bit_for_bit(smollm2, sample, two_qkeys, monkeypatch):
    """hf_cache.py's growing caches only move where keys and values live: the log-probs and the
    generated replies are exactly those of transformers' own cache (so no prediction changes)."""
    prompts = _logprob_prompts(sample, two_qkeys)
    requests = _generation_requests(sample, two_qkeys)
    assert smollm2.growing
    grown = [r.logprobs for r in smollm2.next_token_logprobs(prompts, candidates(4))]
    grown_replies, _ = _generate_with(smollm2, requests, 5)
    monkeypatch.setattr(smollm2, "growing", False)
    plain = [r.logprobs for r in smollm2.next_token_logprobs(prompts, candidates(4))]
    plain_replies, _ = _generate_with(smollm2, requests, 5)
    assert grown == plain
    assert grown_replies == plain_replies


def test_attention_on_the_cache_own_key_value_heads_gives_the_repeated_heads_numbers_bit_for_bit(
        smollm2, sample, two_qkeys, monkeypatch):
    """hf_cache.grouped_attention only skips transformers' copy of the keys and values over the
    query heads: prompts on shared prefixes (padded) and a step of chunks of three lengths give
    the same hidden states bit for bit, so no reply changes."""
    import torch

    from opinionbench.models import hf_decode

    prompts = [r.prompt for r in _generation_requests(sample, two_qkeys)]
    encoded = [smollm2.encode(p) for p in prompts]

    def hidden(grouped: bool) -> torch.Tensor:
        with torch.inference_mode():
            monkeypatch.setattr(smollm2, "grouped", grouped)
            decoder = hf_decode._Decoder(smollm2, hf_decode._SharedPrefixes(smollm2, prompts, encoded))
            rows = decoder._start(list(range(len(prompts))), [[] for _ in prompts])
            decoder._feed(rows, [[smollm2.pad_id] * (1 + i % 3) for i in range(len(prompts))])
            return rows.hidden

    assert torch.equal(hidden(True), hidden(False))


def test_tokens_taken_back_leave_a_row_as_if_they_were_never_fed(smollm2, sample, two_qkeys):
    """A verbalized row fed a guessed `0.` that the model does not choose takes it back
    (`_Rows.retract`): what it computes next is what it computes had it never been fed the guess,
    to float rounding, whether or not the other rows of its batch were fed a guess."""
    import torch

    from opinionbench.models import hf_decode

    prompts = [r.prompt for r in _generation_requests(sample, two_qkeys)][:6]
    encoded = [smollm2.encode(p) for p in prompts]
    key, guess, then = (smollm2.tokenizer(t, add_special_tokens=False)["input_ids"] for t in ('{"A": ', "0.", "1.00"))
    guessed = [i % 2 == 0 for i in range(len(prompts))]  # every other row is fed the guess

    def after(taken_back: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            decoder = hf_decode._Decoder(smollm2, hf_decode._SharedPrefixes(smollm2, prompts, encoded))
            rows = decoder._start(list(range(len(prompts))), [key + guess if taken_back and g else key for g in guessed])
            for i, g in enumerate(guessed):
                if taken_back and g:
                    rows.retract(i, len(guess))
            decoder._feed(rows, [then for _ in prompts], last=2)
            return rows.hidden, rows.position

    (hidden, position), (plain_hidden, plain_position) = after(True), after(False)
    assert torch.equal(position, plain_position)
    torch.testing.assert_close(hidden, plain_hidden, rtol=1e-4, atol=1e-4)
    assert not torch.equal(hidden, torch.zeros_like(hidden))


def test_a_packed_forward_gives_each_set_of_rows_what_it_gets_alone(smollm2, sample, two_qkeys):
    """hf_packed.forward runs several sets of rows, each with its own cache and padded layout, as
    one forward (a decoding step of chunks of three widths beside prompts still starting): each
    set's kept hidden states (the last layer run on those alone) and each layer's cache are what
    a forward of that set alone gives, to float rounding."""
    import torch

    from opinionbench.models import hf_decode, hf_packed

    prompts = [r.prompt for r in _generation_requests(sample, two_qkeys)][:8]
    encoded = [smollm2.encode(p) for p in prompts]
    steps = [[smollm2.pad_id] * (1 + i % 3) for i in range(4)]

    def run(packed: bool):
        with torch.inference_mode():
            decoder = hf_decode._Decoder(smollm2, hf_decode._SharedPrefixes(smollm2, prompts, encoded))
            decoder.packed = packed
            started = decoder._prompt_rows([0, 1, 2, 3], [decoder.prefixes.suffix(i) for i in range(4)])
            decoder._feed_parts([(started, [decoder.prefixes.suffix(i) for i in range(4)])], last=3)
            starting = decoder._prompt_rows([4, 5, 6, 7], [decoder.prefixes.suffix(i) for i in range(4, 8)])
            decoder._feed_parts([(started, steps), (starting, [decoder.prefixes.suffix(i) for i in range(4, 8)])],
                                last=3)
            return started, starting

    assert smollm2.growing and hf_packed.packable(smollm2.model)
    for alone, together in zip(run(False), run(True)):
        torch.testing.assert_close(together.hidden, alone.hidden, rtol=1e-4, atol=1e-4)
        assert torch.equal(together.position, alone.position) and torch.equal(together.mask, alone.mask)
        for layer in (0, -1):
            torch.testing.assert_close(together.cache.layers[layer].keys, alone.cache.layers[layer].keys,
                                       rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(together.cache.layers[layer].values, alone.cache.layers[layer].values,
                                       rtol=1e-4, atol=1e-4)


def test_matmul_attention_is_torch_softmax_attention():
    """hf_packed.matmul_attention (each key/value head's query heads as one matmul) gives torch's
    SDPA numbers to float rounding, under a padding-and-causal mask; a query that sees nothing
    (a left pad with no prefix) comes out finite instead of NaN."""
    import torch

    from opinionbench.models.hf_packed import additive, matmul_attention

    gen = torch.Generator().manual_seed(0)
    rows, heads, kv_heads, width, columns, dim = 3, 9, 3, 5, 12, 64
    q = torch.randn(rows, heads, width, dim, generator=gen)
    k, v = (torch.randn(rows, kv_heads, columns, dim, generator=gen) for _ in range(2))
    seen = torch.ones(rows, columns, dtype=torch.bool)
    seen[1, :9] = False  # row 1: no prefix and 2 left pads, so its first query sees nothing
    causal = torch.arange(columns) <= torch.arange(columns - width, columns).unsqueeze(1)
    mask = seen[:, None, None, :] & causal
    out = matmul_attention(q, k, v, additive(mask), dim ** -0.5)  # [rows, width, heads, dim]
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    sees = mask.any(-1).squeeze(1)  # [rows, width]
    torch.testing.assert_close(out.transpose(1, 2)[sees.unsqueeze(1).expand(-1, heads, -1)],
                               expected[sees.unsqueeze(1).expand(-1, heads, -1)], rtol=1e-5, atol=1e-5)
    assert not sees.all() and torch.isfinite(out).all()


_HEAP_PROBE = """
import ctypes, sys
if sys.argv[1] == "keep":
    from opinionbench.models.cpu_allocator import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
class Info(ctypes.Structure):  # glibc's struct mallinfo2
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
before = libc.mallinfo2()
block = libc.malloc(16 << 20)  # an activation's size (940 tokens x 1536 floats is 5.8 MB)
during = libc.mallinfo2()
libc.free(block)
print(during.hblks - before.hblks, libc.mallinfo2().fordblks >= 16 << 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only: elsewhere nothing is asked")
def test_freed_activations_stay_in_the_heap_for_reuse():
    """Once the CPU backend has asked glibc to keep freed blocks (`cpu_allocator`), a block of an
    activation's size comes from its heap and stays there when freed, for the next forward to reuse;
    as glibc comes, it is a mapping of its own, handed back to the kernel on free (and the next
    one faulted in and zeroed page by page). Read from glibc's own counters (`mallinfo2`)."""
    def probe(mode: str) -> tuple[int, bool]:
        done = subprocess.run([sys.executable, "-c", _HEAP_PROBE, mode], capture_output=True, text=True, check=True)
        mapped, kept = done.stdout.split()
        return int(mapped), kept == "True"

    assert probe("keep") == (0, True)
    assert probe("default") == (1, False)


def test_the_fast_draw_is_torch_multinomials_draw():
    """`hf_decode._draw` picks what `torch.multinomial(probs, 1)` picks from the same generator and
    leaves it in the same state, on peaked, flat, one-hot and zero-holding rows and on a
    [n, vocab] shape of every size the sampled requests use, so seeded samples stay as they were."""
    import torch

    from opinionbench.models.hf_decode import _draw, _exponentials_match

    assert _exponentials_match()
    logits = torch.randn(8, 49152, generator=torch.Generator().manual_seed(3))
    cases = [torch.softmax(logits * t, dim=-1) for t in (0.1, 1.0, 6.0)]
    one_hot = torch.zeros(3, 50)
    one_hot[torch.arange(3), torch.tensor([0, 17, 49])] = 1.0
    zeros = torch.softmax(torch.randn(5, 1000), dim=-1)
    zeros[:, ::3] = 0.0
    cases += [one_hot, zeros, cases[1][:1]]
    for seed, probs in enumerate(cases):
        ours, theirs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        for _ in range(20):
            assert torch.equal(_draw(probs, ours), torch.multinomial(probs, 1, generator=theirs).squeeze(1))
        assert torch.equal(ours.get_state(), theirs.get_state())


def test_samples_with_the_same_tokens_so_far_are_decoded_on_one_row():
    """A sampled request's n samples share a row while their tokens agree: the next step runs one
    row per distinct (row, token), and an ended sample reads a row of its request (its draw is
    dropped) so each draw still sees n rows."""
    from opinionbench.models.hf_decode import _next_rows

    owner = [0, 0, 0, 0, 1, 1, 2]  # request of each sample; request 2 is done
    slot = [0, 0, 0, 0, 1, 1, 2]  # each request's prompt row
    chosen = {0: 5, 1: 5, 2: 7, 3: 2, 4: 9, 5: 9}
    ended = [False, False, False, True, False, False, True]  # sample 3 chose the end token
    new, parents, fed = _next_rows(owner, slot, chosen, ended, pending={0, 1})
    assert (parents, fed) == ([0, 0, 1], [5, 7, 9])
    assert new[:6] == [0, 0, 1, 0, 2, 2]


def test_rows_regrouped_in_place_hold_their_parents_rows(smollm2):
    """`_Rows.regroup` copies only the rows it adds (a row's first continuation stays where it is;
    the room for rows runs out and doubles on the way) and gathers all rows once rows read by none
    are a quarter of them: either way every new row holds its parent's keys, values, mask,
    position and hidden state bit for bit."""
    from types import SimpleNamespace

    import torch
    from transformers import DynamicCache

    from opinionbench.models import hf_cache
    from opinionbench.models.hf_decode import _Rows

    config = smollm2.model.config
    torch.manual_seed(0)
    heads, dim = config.num_key_value_heads, config.hidden_size // config.num_attention_heads
    source = SimpleNamespace(layers=[SimpleNamespace(keys=torch.randn(3, heads, 5, dim), values=torch.randn(3, heads, 5, dim))
                                     for _ in DynamicCache(config=config).layers])

    def three_rows() -> _Rows:
        mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
        cache = hf_cache.stacked_cache(config, [source], [mask], spare=4, dtype=torch.float32, spare_rows=2)
        return _Rows(cache, mask, torch.tensor([7, 9, 5]), torch.arange(12.0).reshape(3, 4))

    rows, first = three_rows(), three_rows()
    origin = [0, 1, 2]  # the first row each row of `rows` is a copy of
    for parents, in_place in (([0, 0, 1, 2, 2, 2], True),  # three rows added: the room of two doubles
                              ([0, 1, 3, 3, 4, 5, 5], True),  # row 2 read by none: one of eight, it stays
                              ([0, 0, 4, 6, 6], False)):  # five of eight read by none: all gathered
        place = rows.regroup(parents, in_place=True)
        assert (place != list(range(len(parents)))) == in_place
        grown = origin + [None] * (max(place) + 1 - len(origin)) if in_place else [None] * len(parents)
        for j, parent in enumerate(parents):
            grown[place[j]] = origin[parent]
        origin = grown
        for j in place:
            at = origin[j]
            for mine, theirs in zip(rows.cache.layers, first.cache.layers):
                assert torch.equal(mine.keys[j], theirs.keys[at]) and torch.equal(mine.values[j], theirs.values[at])
            assert torch.equal(rows.mask[j], first.mask[at]) and rows.position[j] == first.position[at]
            assert torch.equal(rows.hidden[j], first.hidden[at])
        assert len(rows.position) == rows.cache.layers[0].keys.shape[0] == len(origin)


def test_a_growing_layer_with_room_for_rows_grows_its_columns_keeping_its_rows():
    """Columns outgrow their room while rows still have room (rows yet to be added): the filled
    rows and columns are kept bit for bit, the new ones written after them."""
    import torch

    from opinionbench.models.hf_cache import GrowingLayer

    torch.manual_seed(0)
    keys, values = torch.randn(4, 3, 5, 8), torch.randn(4, 3, 5, 8)
    layer = GrowingLayer(keys.clone(), values.clone(), length=5, rows=2)  # room for 2 more rows
    new_keys, new_values = torch.randn(2, 3, 3, 8), torch.randn(2, 3, 3, 8)
    got_keys, got_values = layer.update(new_keys, new_values)
    assert torch.equal(got_keys, torch.cat([keys[:2], new_keys], dim=2))
    assert torch.equal(got_values, torch.cat([values[:2], new_values], dim=2))
    layer.append_rows([1])
    assert torch.equal(layer.keys[2], got_keys[1]) and layer.keys.shape == (3, 3, 8, 8)


def test_prompts_are_split_into_the_forwards_that_compute_fewest_tokens():
    """`_forwards` (how a batch's prompts are run): consecutive runs of at most `most` prompts whose
    padded tokens plus a cost per forward are the least of every possible split (checked against
    all splits of random small batches)."""
    import itertools
    import random

    from opinionbench.models.hf_decode import _forwards

    def cost_of(runs, lengths, cost):
        return sum((stop - start) * max(lengths[start:stop]) + cost for start, stop in runs)

    rng = random.Random(0)
    for _ in range(300):
        lengths = sorted(rng.randint(1, 60) for _ in range(rng.randint(1, 8)))
        most, cost = rng.randint(1, 4), rng.choice([0, 5, 40])
        runs = _forwards(lengths, most, cost)
        assert [start for start, _ in runs] == [0] + [stop for _, stop in runs[:-1]] and runs[-1][1] == len(lengths)
        assert all(0 < stop - start <= most for start, stop in runs)
        splits = ([(a, b) for a, b in zip((0, *cuts), (*cuts, len(lengths)))]
                  for k in range(len(lengths)) for cuts in itertools.combinations(range(1, len(lengths)), k))
        best = min(cost_of(split, lengths, cost) for split in splits if all(b - a <= most for a, b in split))
        assert cost_of(runs, lengths, cost) == best


def test_a_rerun_reuses_what_was_computed_and_computes_only_new_cells(smollm2, sample, tmp_path):
    questions, _ = sample
    three = sample_questions(questions, 3, seed=1)
    settings = MethodSettings(option_orders=1)
    _, first, before = _run(smollm2, "logprobs", "none", sample, three[:2], tmp_path, settings, chunk_size=1)
    assert (first.computed, first.reused) == (2, 0)
    assert len(list((tmp_path / "parts" / "logprobs" / "none").glob("part-*.parquet"))) == 2  # one chunk per cell
    cost_made = read_cost(tmp_path / "parts" / "logprobs" / "none")
    _, second, after = _run(smollm2, "logprobs", "none", sample, three, tmp_path, settings, chunk_size=1)
    assert (second.computed, second.reused) == (1, 2)
    kept = after[after["qkey"].isin(three[:2])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True))
    # The file says how it was made, nothing that differs from run to run; what it cost is
    # beside its parts, and compute seconds add up over the resumed runs.
    made = run_metadata(before)
    assert made["method"] == "logprobs" and made["infer.option_orders"] == 1 and made["model_id"] == smollm2.model_id
    assert not {"infer_seconds", "infer_tokens"} & set(made)
    remade = read_cost(tmp_path / "parts" / "logprobs" / "none")
    assert (cost_made["cells"], remade["cells"], remade["failures"]) == (2, 3, 0)
    assert 0 < cost_made["infer_seconds"] < remade["infer_seconds"]
    assert 0 < cost_made["infer_tokens"] < remade["infer_tokens"]


def test_a_question_with_one_option_is_a_recorded_failure_and_the_others_go_on(smollm2, sample, two_qkeys, tmp_path):
    questions, distributions = sample
    bad = questions["qkey"] == two_qkeys[0]
    one_option = questions.copy()
    one_option.loc[bad, "options"] = pd.Series([["Yes"]], index=questions.index[bad])
    _, summary, preds = _run(smollm2, "logprobs", "none", (one_option, distributions), two_qkeys, tmp_path,
                             MethodSettings(option_orders=1))
    by_q = preds.set_index("qkey")
    assert by_q.loc[two_qkeys[0], "failed"] and "1 option(s)" in by_q.loc[two_qkeys[0], "error"]
    assert two_qkeys[0] in by_q.loc[two_qkeys[0], "error"]
    assert not by_q.loc[two_qkeys[1], "failed"] and summary.failed == 1


@pytest.mark.parametrize("model", ["/no/such/model.gguf", "/no/such/model-dir"])
def test_a_model_path_that_does_not_exist_is_one_clear_error(model, tmp_path):
    from opinionbench.models.hf import HFBackend

    with pytest.raises(ModelError) as info:
        HFBackend(model, cache_dir=tmp_path / "data" / "models")
    assert model in str(info.value) and "\n" not in str(info.value)


def test_settings_have_one_source_of_defaults_and_a_misspelt_knob_is_an_error(smollm2, tmp_path):
    from opinionbench.models.hf import HFBackend, HFSettings

    defaults = HFSettings(backend="hf", model="embedded:smollm2")
    assert smollm2.generation_batch_size == defaults.generation_batch_size  # the fixture leaves it unset
    with pytest.raises(TypeError, match="generation_batchsize"):
        HFBackend("embedded:smollm2", cache_dir=tmp_path / "data" / "models", generation_batchsize=4)


def test_cli_with_a_missing_model_path_prints_one_error_line(sample, tmp_path):
    questions, distributions = sample
    write_parquet(questions, tmp_path / "data" / "build" / "questions.parquet")
    write_parquet(distributions, tmp_path / "data" / "build" / "distributions.parquet")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "models": {"broken": {"backend": "hf", "model": "/no/such/model.gguf"}},
        "infer": {"dataset_dir": "data/build", "steerings": ["none"], "questions": {"n": 2}},
    }))
    result = subprocess.run([sys.executable, "-m", "opinionbench.cli", "--params", str(tmp_path / "params.yaml"),
                             "infer", "--model", "broken", "--method", "logprobs", "--no-progress"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "/no/such/model.gguf" in errors[0] and "not found" in errors[0], result.stderr


def test_device_and_dtype_resolve_for_this_machine(smollm2):
    import torch

    from opinionbench.models.hf import resolve_device, resolve_dtype

    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto") == expected and smollm2.device == expected
    assert resolve_dtype("auto", "cuda") == "bfloat16" and resolve_dtype("auto", "cpu") == "float32"
    assert smollm2.dtype == resolve_dtype("auto", expected)
    assert next(smollm2.model.parameters()).device.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="device 'cuda' is not available"):
            resolve_device("cuda")


def test_a_bfloat16_model_is_another_revision_and_close_to_fp32(smollm2, sample, two_qkeys):
    """dtype changes the numbers a little: it is part of the revision (no fp32 cell is reused)."""
    from opinionbench.models.hf import HFBackend

    half = HFBackend("embedded:smollm2", cache_dir=MODELS_CACHE, threads=2, device="cpu", dtype="bfloat16")
    assert half.revision == f"{smollm2.revision}+bfloat16" and next(half.model.parameters()).dtype.is_floating_point
    prompts = _logprob_prompts(sample, two_qkeys)[:2]
    fp32, bf16 = smollm2.next_token_logprobs(prompts, candidates(4)), half.next_token_logprobs(prompts, candidates(4))
    for a, b in zip(fp32, bf16):
        for token in ("A", "B"):
            assert abs(math.exp(a.logprobs[token]) - math.exp(b.logprobs[token])) < 0.05


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device here (GPU test)")
def test_cuda_logprobs_match_the_cpu(smollm2, sample, two_qkeys):
    from opinionbench.models.hf import HFBackend

    gpu = HFBackend("embedded:smollm2", cache_dir=MODELS_CACHE, device="cuda", dtype="float32", batch_size={"cuda": 64})
    assert gpu.device == "cuda" and gpu.batch_size == 64
    prompts = _logprob_prompts(sample, two_qkeys)
    for a, b in zip(smollm2.next_token_logprobs(prompts, candidates(4)), gpu.next_token_logprobs(prompts, candidates(4))):
        for token, value in a.logprobs.items():
            assert abs(value - b.logprobs[token]) < 1e-3
