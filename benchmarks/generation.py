"""`hf` generation, batched vs one prompt at a time, on the same real questions.

Same SmolLM2-135M-Instruct, same prompts (persona steering POLPARTY/Republican, the
`verbalized` and `sequence` prompts of each question in one option order), in one run:

- one at a time: `generate_one_at_a_time` of tests/hf_reference.py (each prompt alone; the
  constrained JSON fed chunk by chunk; `model.generate` for the n samples);
- batched: `generation_batch_size` rows decoded together, the shared prefix (chat header and
  persona) run once, the JSON grammar followed per row, each sampled request on its own
  seeded generator.

Checks printed beside the times: the greedy verbalized replies are the same strings in both
paths, and so are the seeded samples. Tokens/s counts the tokens each path's forwards computed
(`metered`): prompt tokens once (a shared prefix once per call in the batched path) plus the
tokens fed while decoding.

The machine may be shared: the two paths of each method are timed twice in A-B-B-A order and
summed, so a load that drifts during the run weighs on both alike; the whole comparison is
repeated (`--repeats`, 3) and each ratio's min / median / max printed, so a target is met when
the median meets it and the minimum is near.

Questions: ../shared/data/opinionqa_xl/opinionqa-xl.json (every k-th question so that waves
and topics vary); without it the 12 embedded sample questions (said so in the output).

Usage: python benchmarks/generation.py [--questions 32] [--batch-size 128] [--samples 8] [--repeats 3]
Last line: batched_speedup=X.X (all one-at-a-time seconds / all batched seconds, median of the repetitions)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from opinionbench.elicit import sequence, verbalized
from opinionbench.elicit.base import Item, MethodSettings
from opinionbench.elicit.sequence import SequenceSettings
from opinionbench.elicit.verbalized import VerbalizedSettings
from opinionbench.models.base import GenerationRequest, metered
from opinionbench.models.hf import HFBackend, HFSettings
from opinionbench.steering import steer
from opinionbench.steering.base import SteeringData

REPO = Path(__file__).resolve().parents[1]
OPINIONQA_XL = REPO / ".." / "shared" / "data" / "opinionqa_xl" / "opinionqa-xl.json"
GROUP = ("POLPARTY", "Republican")
sys.path.insert(0, str(REPO / "tests"))  # the reference path the batched one is timed against

from hf_reference import generate_one_at_a_time  # noqa: E402


def load_questions(n: int, path: Path) -> tuple[list[tuple[str, str, tuple[str, ...]]], str]:
    """n (qkey, wording, options) spread over OpinionQA-XL ("Refused" dropped), else the sample's."""
    if path.is_file():
        table = json.loads(path.read_text())
        every = [(f"{wave}.{key}", q["question"], tuple(o for o in q["options"] if o != "Refused"))
                 for wave, qs in table.items() for key, q in qs.items()]
        usable = [q for q in every if 2 <= len(q[2]) <= 26]
        step = max(1, len(usable) // n)
        return usable[::step][:n], f"OpinionQA-XL ({path.name}, every {step}th of {len(usable)} questions)"
    from opinionbench.sample import QUESTIONS

    picked = [(q.qcode, q.wording, q.options) for q in QUESTIONS][:n]
    return picked, f"the {len(picked)} embedded sample questions (no {path}: ../shared is absent)"


def requests_for(questions, samples: int) -> tuple[list[GenerationRequest], list[GenerationRequest]]:
    """The verbalized and sequence requests of each question, as the methods' `run` builds them."""
    data = SteeringData(pd.DataFrame({"qkey": [], "options": []}), pd.DataFrame(), persona_style="bio")
    settings = MethodSettings(option_orders=1, sequence=SequenceSettings(n=samples),
                              verbalized=VerbalizedSettings(max_tokens=60))
    verbal, sampled = [], []
    for qkey, wording, options in questions:
        item = Item(qkey, *GROUP, wording, options, steer("persona", data, qkey, *GROUP))
        verbal += [GenerationRequest(p, max_tokens=settings.of(VerbalizedSettings).max_tokens, json_schema=verbalized.schema(len(options)))
                   for p in verbalized.prompts(item, settings)]
        sampled += [GenerationRequest(p, max_tokens=4, temperature=settings.of(SequenceSettings).temperature, n=samples,
                                      seed=sequence._seed(p, settings.seed)) for p in sequence.prompts(item, settings)]
    return verbal, sampled


def timed(backend, requests: list[GenerationRequest], batch_size: int) -> tuple[list, float, int]:
    """Replies, seconds and tokens computed of one `generate` call at that generation batch size
    (1: the one-at-a-time reference)."""
    backend.generation_batch_size = batch_size
    with metered() as tokens:
        t0 = time.perf_counter()
        replies = generate_one_at_a_time(backend, requests) if batch_size == 1 else backend.generate(requests)
        seconds = time.perf_counter() - t0
    return replies, seconds, tokens[0]


def compare(backend, name: str, requests: list[GenerationRequest], batch_size: int) -> tuple[float, float]:
    """Both paths on the same requests, A-B-B-A; prints times, tokens/s and whether the replies agree."""
    one_a, one_s, one_tokens = timed(backend, requests, 1)
    batched_a, batched_s, batched_tokens = timed(backend, requests, batch_size)
    batched_b, batched_s2, _ = timed(backend, requests, batch_size)
    one_b, one_s2, _ = timed(backend, requests, 1)
    one_s, batched_s = one_s + one_s2, batched_s + batched_s2
    same = sum(a == b for a, b in zip(one_a, batched_a))
    repeat = batched_a == batched_b and one_a == one_b
    print(f"{name:10s} {len(requests)} prompts: one at a time {one_s:7.1f} s ({2 * one_tokens / one_s:6.0f} tokens/s), "
          f"batched {batched_s:7.1f} s ({2 * batched_tokens / batched_s:6.0f} tokens/s) -> {one_s / batched_s:4.1f}x; "
          f"replies equal {same}/{len(requests)}; repeat runs equal: {repeat}", flush=True)
    for request, a, b in zip(requests, one_a, batched_a):
        if a != b:
            print(f"  differs: {request.prompt.messages[-1][1][:60]!r}: {a} vs {b}")
    return one_s, batched_s


def spread(name: str, ratios: list[float]) -> str:
    """min / median / max of a ratio over the repetitions."""
    return (f"{name}: median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}) "
            f"over {len(ratios)} repetitions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=HFSettings.model_fields["generation_batch_size"].default,
                        help="generation_batch_size of the batched path (rows; default: the backend's)")
    parser.add_argument("--samples", type=int, default=8, help="sequence answers sampled per prompt (params.yaml: 8)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="A-B-B-A repetitions (the spread is printed)")
    parser.add_argument("--data", type=Path, default=OPINIONQA_XL)
    args = parser.parse_args()

    questions, source = load_questions(args.questions, args.data)
    verbal, sampled = requests_for(questions, args.samples)
    backend = HFBackend("embedded:smollm2", cache_dir=REPO / "data" / "models", threads=args.threads)
    print(f"questions={len(questions)} from {source}; persona steering {'/'.join(GROUP)}, 1 option order; "
          f"threads={torch.get_num_threads()} generation_batch_size={args.batch_size}; "
          f"verbalized: constrained JSON, greedy; sequence: {args.samples} samples of <= 4 tokens, seeded", flush=True)
    backend.generate(verbal[:2] + sampled[:2])  # warm-up (allocator, kernels)
    ratios: dict[str, list[float]] = {"verbalized": [], "sequence": [], "batched_speedup": []}
    for rep in range(args.repeats):
        print(f"repetition {rep + 1}/{args.repeats}", flush=True)
        totals = [compare(backend, "verbalized", verbal, args.batch_size),
                  compare(backend, "sequence", sampled, args.batch_size)]
        for (one, batched), name in zip(totals, ("verbalized", "sequence")):
            ratios[name].append(one / batched)
        one_s, batched_s = (sum(t[i] for t in totals) for i in (0, 1))
        ratios["batched_speedup"].append(one_s / batched_s)
        print(f"side by side: one at a time {one_s:.1f} s vs batched {batched_s:.1f} s for the same "
              f"{len(verbal) + len(sampled)} prompts, twice each -> {one_s / batched_s:.2f}x", flush=True)
    for name, values in ratios.items():
        print(spread(name, values))
    print(f"batched_speedup={statistics.median(ratios['batched_speedup']):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
