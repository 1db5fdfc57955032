"""`hf` + `logprobs` fast path vs the seeds' per-option loop, and vs a roofline measured here.

Same questions, same persona prompts (POLPARTY/Republican, bio style, one option order), same
SmolLM2-135M-Instruct, in one run:

- fast path: `HFBackend.next_token_logprobs` (one forward per prompt, LM head at the last
  position only, the shared prefix's KV cache reused, length-bucketed batches);
- per-option loop: `per_option_logprobs` of tests/hf_reference.py (one full forward with
  logits per candidate token, "A" and " A" for every option).
  It is ~10-20x slower, so it is timed on a subset (`--per-option-questions`); the speedup
  compares time per question;
- roofline: the FLOP/s of an fp32 2048x2048 matmul on this machine (best of a few) divided
  by the model's FLOPs per token (2 x parameters).

Tokens/s of the fast path counts every prompt's full length (prefix + suffix) as if each
prompt were run on its own: the tokens a plain run "would process". The shared prefix is
really computed once per group, so this effective rate can exceed what the hardware does;
the tokens actually computed are printed too.

Questions: real ATP waves from ../shared/data/atp (the smallest waves, built in memory, until
--questions are available); without them the 12 sample questions are
replicated with numbered wording (said so in the output).

The machine may be shared: each repetition (`--repeats`, 3) times matmul, fast path,
per-option loop, fast path, matmul (A B B A: the fast path is the mean of its two runs, the
peak the best of its two), and each ratio's min / median / max over the repetitions is
printed, so a target is met when the median meets it and the minimum is near.

Usage: python benchmarks/inference.py [--questions 200] [--per-option-questions 10] [--repeats 3]
Last line: speedup_vs_per_option=X.X roofline_fraction=X.XX roofline_fraction_computed=X.XX (medians)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from opinionbench.elicit import logprobs
from opinionbench.elicit.base import Item, MethodSettings
from opinionbench.steering import steer
from opinionbench.steering.base import SteeringData

REPO = Path(__file__).resolve().parents[1]
ATP = REPO / ".." / "shared" / "data" / "atp"
sys.path.insert(0, str(REPO / "tests"))  # the reference paths the fast one is timed against

from hf_reference import per_option_logprobs  # noqa: E402


def load_questions(n: int, atp_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """At least n questions with a Republican distribution: real waves if present, else the sample replicated."""
    from opinionbench.survey.build import build_waves

    files = sorted(atp_dir.glob("W*.sav"), key=lambda f: f.stat().st_size) if atp_dir.is_dir() else []
    if files:
        qs, ds, used = [], [], []
        for f in files:  # built in memory: nothing is written
            built = build_waves([f], workers=1)
            if built.questions.empty:
                continue
            qs.append(built.questions)
            ds.append(built.distributions)
            used.append(f.stem)
            if sum(len(q) for q in qs) >= n * 1.3:  # some lack the group or have one option
                break
        return pd.concat(qs, ignore_index=True), pd.concat(ds, ignore_index=True), f"real ATP waves {', '.join(used)}"
    built = build_waves([REPO / "data" / "sample" / "W900.sav"], workers=1)
    copies_q, copies_d = [], []
    for k in range(-(-n // len(built.questions))):
        q = built.questions.copy()
        q["qkey"] = q["qkey"] + f"_{k}"
        q["question"] = q["question"] + f" (item {k})"
        d = built.distributions.copy()
        d["qkey"] = d["qkey"] + f"_{k}"
        copies_q.append(q)
        copies_d.append(d)
    return (pd.concat(copies_q, ignore_index=True), pd.concat(copies_d, ignore_index=True),
            "the 12 sample questions replicated with numbered wording (no ../shared/data/atp)")


def persona_prompts(questions: pd.DataFrame, distributions: pd.DataFrame, n: int, seed: int):
    have = set(distributions.loc[(distributions["attribute"] == "POLPARTY") & (distributions["group"] == "Republican"), "qkey"])
    pool = questions[questions["qkey"].isin(have) & questions["options"].map(lambda o: 2 <= len(o) <= 26)]
    picked = pool.sample(n=min(n, len(pool)), random_state=seed).sort_values("qkey")
    data = SteeringData(questions, distributions)
    settings = MethodSettings(option_orders=1)
    prompts, sizes = [], []
    for row in picked.itertuples(index=False):
        item = Item(row.qkey, "POLPARTY", "Republican", str(row.question), tuple(str(o) for o in row.options),
                    steer("persona", data, row.qkey, "POLPARTY", "Republican"))
        prompts += logprobs.prompts(item, settings)
        sizes.append(len(row.options))
    return prompts, sizes


def matmul_flops(reps: int = 5) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 2048**3 / best


def fast_path(backend, prompts, cands) -> tuple[float, int]:
    """Seconds of one `next_token_logprobs` call on every prompt, and the tokens it computed."""
    before = backend.tokens_processed
    t0 = time.perf_counter()
    backend.next_token_logprobs(prompts, cands)
    return time.perf_counter() - t0, backend.tokens_processed - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--per-option-questions", type=int, default=10, help="subset timed with the per-option loop")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--atp-dir", type=Path, default=ATP)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (the spread is printed)")
    args = parser.parse_args()

    from opinionbench.models.hf import HFBackend

    questions, distributions, source = load_questions(args.questions, args.atp_dir)
    prompts, sizes = persona_prompts(questions, distributions, args.questions, args.seed)
    n = len(prompts)
    cands = logprobs.candidates(max(sizes))
    backend = HFBackend("embedded:smollm2", cache_dir=REPO / "data" / "models", batch_size=args.batch_size,
                        threads=args.threads)
    params = sum(p.numel() for p in backend.model.parameters())
    flops_per_token = 2 * params
    print(f"questions={n} from {source}; persona steering (POLPARTY/Republican), 1 option order, "
          f"{len(cands)} candidate tokens; threads={torch.get_num_threads()} batch_size={args.batch_size}")

    backend.next_token_logprobs(prompts[: min(4, n)], cands)  # warm-up (allocator, kernels)
    full_tokens = sum(len(backend.encode(p)) for p in prompts)
    m = min(args.per_option_questions, n)
    subset = list(range(0, n, max(1, n // m)))[:m]
    roofline_runs, speedup_runs = [], []
    for rep in range(args.repeats):  # A B B A: matmul, fast, per-option, fast, matmul
        peak = matmul_flops()
        fast_s, computed = fast_path(backend, prompts, cands)
        t0 = time.perf_counter()  # each question scores its own options' candidates ("A", " A", ...)
        slow = [per_option_logprobs(backend, [prompts[i]], logprobs.candidates(sizes[i]))[0] for i in subset]
        slow_s = time.perf_counter() - t0
        fast_s2, _ = fast_path(backend, prompts, cands)
        peak = max(peak, matmul_flops())
        fast = backend.next_token_logprobs(prompts, cands)
        fast_s = (fast_s + fast_s2) / 2

        diff = max(abs(fast[i].logprobs[t] - s.logprobs[t]) for i, s in zip(subset, slow) for t in s.logprobs)
        fast_q, slow_q = fast_s / n, slow_s / len(subset)
        tok_s = full_tokens / fast_s
        roofline = peak / flops_per_token
        roofline_runs.append((tok_s / roofline, computed / fast_s / roofline))
        speedup_runs.append(slow_q / fast_q)
        print(f"repetition {rep + 1}/{args.repeats}")
        print(f"  matmul fp32 2048^2: {peak / 1e9:.1f} GFLOP/s; model {params / 1e6:.1f}M parameters -> "
              f"roofline {roofline:.0f} tokens/s (2 x parameters FLOPs per token)")
        print(f"  fast path:       {fast_s:8.2f} s for {n} questions = {fast_q * 1000:8.1f} ms/question (mean of 2); "
              f"{full_tokens} prompt tokens ({full_tokens / n:.0f}/question) -> {tok_s:.0f} tokens/s effective; "
              f"{computed} tokens actually computed (shared prefix once per group) -> {computed / fast_s:.0f} tokens/s")
        print(f"  per-option loop: {slow_s:8.2f} s for {len(subset)} of the same questions = {slow_q * 1000:8.1f} "
              f"ms/question (one full forward per candidate token: 2 per option)")
        print(f"  max |fast - per-option| log-prob on the subset: {diff:.2e}")
        print(f"  side by side: per-option {slow_q * 1000:.1f} ms/q vs fast {fast_q * 1000:.1f} ms/q; "
              f"fast {tok_s:.0f} tokens/s vs roofline {roofline:.0f} tokens/s; roofline fraction "
              f"{tok_s / roofline:.2f} effective, {computed / fast_s / roofline:.2f} on computed tokens", flush=True)
    for name, values in (("speedup_vs_per_option", speedup_runs),
                         ("roofline_fraction (effective tokens)", [r[0] for r in roofline_runs]),
                         ("roofline_fraction_computed (tokens actually computed)", [r[1] for r in roofline_runs])):
        print(f"{name}: median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f}) "
              f"over {len(values)} repetitions")
    print(f"speedup_vs_per_option={statistics.median(speedup_runs):.1f} "
          f"roofline_fraction={statistics.median(r[0] for r in roofline_runs):.2f} "
          f"roofline_fraction_computed={statistics.median(r[1] for r in roofline_runs):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
