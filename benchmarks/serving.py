"""The `openai` backend against a local server: does it drive the server as fast as a bare client, at what CPU?

Two endpoints (`--endpoint`), same questions and the exact prompts of the `logprobs` method
(persona steering, POLPARTY/Republican, one option order, built with the method's own `prompts`):

- `llama` (default): the llama.cpp server (llama-cpp-python, `python -m llama_cpp.server`) with
  the embedded SmolLM2-135M-Instruct GGUF on a free port of 127.0.0.1, warmed up once, stopped at
  exit whatever happens. Its number: `client_efficiency`, the backend's requests/s over the bare
  client's (target >= 0.95), then the hf backend's `logprobs` fast path on the same items
  in-process (items/s) and the total variation distance between the openai backend's
  distributions and the hf ones (same weights: hf runs the GGUF dequantised to fp32, llama.cpp
  computes with the Q4_1 blocks and 8-bit activations, and the server lists only the top-20
  tokens): mean and max (`--no-hf` skips these two).
- `instant`: an OpenAI-compatible endpoint with no model (benchmarks/_instant_server.py, in its
  own process: its CPU is not the client's) that answers every request at once with one
  precomputed reply. The server costs nothing, so what is left is the client's own CPU per
  request. Its number: `cpu_ratio`, the backend's CPU per request over the bare client's
  (target <= 1.1).

Sides, each timed in wall seconds and in this (client) process's CPU seconds (`time.process_time`,
every thread):
1. bare client: the `openai` client and a thread pool of `--concurrency`, sending the same
   chat-completion requests the backend sends (max_tokens=1, logprobs, top_logprobs) and doing
   nothing with the replies (which the client parses into its typed objects);
2. backend: the same items through the inference runner (`InferenceRun` + `OpenAIBackend`, same
   concurrency, chunks written as parquet parts as in a real run, the table written at the end,
   into a temporary directory).
Both are warmed up once (imports, connections, the environment tags a table records), then
alternate for `--rounds` rounds (>= 3) in A B, B A, A B, ... order, so a drift in other jobs'
load weighs on both alike; each round gives one ratio, and the run prints every side's and every
ratio's median (min-max) over the rounds. A target is met when the median meets it.

Server flags (llama): the llama-cpp-python server runs one model and serialises completions (it
has no parallel slots or continuous batching), so client concurrency only overlaps each
request's HTTP and Python work with the previous one's compute; `--logits_all true` is what its
`logprobs` needs. Threads (`--threads`, default all cores but one, the other left to the
clients): llama.cpp synchronises its threads with spinning barriers after every operation, so on
a shared machine where another job preempts one of them the others spin; measured on the 2-core
development machine under a load of ~7, 2 threads evaluated prompts at 43-195 ms/token, 1 thread
at 15-21 ms/token.

Questions: ../shared/data/opinionqa_xl/opinionqa-xl.json (a seeded sample, refusal options
dropped); without ../shared, the embedded sample wave's questions replicated with numbered
wording (said so in the output).

Usage: python benchmarks/serving.py [--endpoint llama|instant] [--questions N (48 | 1000)]
       [--concurrency 4] [--rounds 4] [--threads N] [--no-hf]
Last line: client_efficiency=X.XX (llama) or cpu_ratio=X.XX (instant), the median over the rounds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opinionbench.elicit import logprobs
from opinionbench.elicit.base import Item, MethodSettings
from opinionbench.models.base import Prompt
from opinionbench.models.llama_server import ALIAS, serve_embedded
from opinionbench.steering import steer
from opinionbench.steering.base import SteeringData

from _instant_server import serve_instant  # noqa: E402 - benchmarks/ is the script's own folder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
OPINIONQA_XL = REPO / ".." / "shared" / "data" / "opinionqa_xl" / "opinionqa-xl.json"
ATTRIBUTE, GROUP = "POLPARTY", "Republican"
TOP_LOGPROBS = 20


# -- questions and prompts ------------------------------------------------------------------
def load_questions(n: int, path: Path, seed: int) -> tuple[pd.DataFrame, str]:
    """n real questions (qkey, question, options) from OpinionQA-XL, else the sample replicated."""
    from opinionbench.datasets.common import is_refusal

    if path.is_file():
        rows = []
        for wave, questions in json.loads(path.read_text()).items():
            for code, q in questions.items():
                options = [str(o) for o in q["options"] if not is_refusal(str(o))]
                if 2 <= len(options) <= 26:
                    rows.append({"qkey": f"{wave}_{code}", "question": str(q["question"]), "options": options})
        frame = pd.DataFrame(rows).sample(n=min(n, len(rows)), random_state=seed).sort_values("qkey")
        return frame.reset_index(drop=True), f"OpinionQA-XL ({path.name}), {len(frame)} of {len(rows)} questions"
    from opinionbench.sample import QUESTIONS

    rows = [{"qkey": f"{q.qcode}_{k}", "question": f"{q.wording} (item {k})",
             "options": [o for o in q.options if not is_refusal(o)]}
            for k in range(-(-n // len(QUESTIONS))) for q in QUESTIONS]
    print(f"note: {path} absent (no ../shared): the embedded sample questions replicated with numbered wording")
    return pd.DataFrame(rows[:n]), "the embedded sample questions, replicated"


def make_items(questions: pd.DataFrame) -> list[Item]:
    """One persona-steered item per question, as the runner builds them."""
    data = SteeringData(questions, pd.DataFrame(columns=["qkey", "attribute", "group"]))
    return [Item(r.qkey, ATTRIBUTE, GROUP, r.question, tuple(r.options), steer("persona", data, r.qkey, ATTRIBUTE, GROUP))
            for r in questions.itertuples(index=False)]


# -- the three clients ----------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Wall seconds of one pass, and the CPU seconds this (client) process spent in it: the
    client's own cost per request, which the server's speed and other jobs' load do not blur."""

    wall: float
    cpu: float


@contextlib.contextmanager
def timed() -> Iterator[list[Timing]]:
    box: list[Timing] = []
    wall, cpu = time.perf_counter(), time.process_time()
    yield box
    box.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))


def bare_client(url: str, prompts: Sequence[Prompt], concurrency: int) -> Timing:
    """The plain `openai` client and a thread pool sending every request once, replies unread."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="none", timeout=60.0, max_retries=2)

    def one(prompt: Prompt) -> object:
        return client.chat.completions.create(model=ALIAS, messages=prompt.as_openai(), max_tokens=1,
                                              temperature=0.0, logprobs=True, top_logprobs=TOP_LOGPROBS)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        with timed() as timing:
            replies = list(pool.map(one, prompts))
    client.close()
    assert all(r.choices and r.choices[0].logprobs for r in replies), "a reply without logprobs"
    return timing[0]


def through_backend(url: str, questions: pd.DataFrame, items: Sequence[Item], settings: MethodSettings,
                    concurrency: int, chunk_size: int, root: Path) -> tuple[Timing, dict[str, np.ndarray]]:
    """(timing, probs by qkey) of an inference run with the openai backend, from a fresh directory
    (the backend, its client and the run are made before the clock starts, as for the bare client)."""
    from opinionbench.inference.predictions import read_predictions
    from opinionbench.inference.runner import InferenceRun
    from opinionbench.models.openai_backend import OpenAIBackend

    backend = OpenAIBackend(ALIAS, base_url=url, concurrency=concurrency, top_logprobs=TOP_LOGPROBS,
                            response_format="json_object")
    data = SteeringData(questions, pd.DataFrame(columns=["qkey", "attribute", "group"]))
    run = InferenceRun(backend, "logprobs", "persona", questions, data, settings, dataset="serving-bench",
                       out_path=root / "predictions.parquet", parts_dir=root / "parts", chunk_size=chunk_size)
    cells = [(item.qkey, ATTRIBUTE, GROUP) for item in items]
    try:
        with timed() as timing:
            summary = run.run(cells, progress=False)
    finally:
        backend.close()
    frame = read_predictions(summary.path)
    if frame["failed"].any():
        raise RuntimeError(f"backend failures: {frame.loc[frame['failed'], 'error'].tolist()[:3]}")
    return timing[0], dict(zip(frame["qkey"], frame["probs"]))


def hf_fast_path(items: Sequence[Item], settings: MethodSettings, threads: int) -> tuple[float, dict[str, np.ndarray]]:
    """(seconds, probs by qkey) of the hf backend's logprobs path on the same items, in-process."""
    from opinionbench.models.hf import HFBackend

    backend = HFBackend("embedded:smollm2", cache_dir=REPO / "data" / "models", threads=threads)
    logprobs.run(backend, items[:2], settings)  # warm-up (allocator, kernels)
    started = time.perf_counter()
    results = logprobs.run(backend, items, settings)
    seconds = time.perf_counter() - started
    if any(r.failed for r in results):
        raise RuntimeError(f"hf failures: {[r.error for r in results if r.failed][:3]}")
    return seconds, {item.qkey: np.asarray(r.probs) for item, r in zip(items, results)}


# -- the run --------------------------------------------------------------------------------
def spread(values: Sequence[float], fmt: str = ".2f") -> str:
    """`median (min-max)` of the repetitions: a target is met when the median meets it."""
    return f"{float(np.median(values)):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def alternate(rounds: int, bare: Callable[[], Timing], backend: Callable[[int], Timing]) -> list[tuple[Timing, Timing]]:
    """(bare, backend) timings of each round, sides taken in A B, B A, A B, ... order: a drift in
    other jobs' load weighs on both alike rather than deciding a ratio."""
    pairs = []
    for k in range(rounds):
        if k % 2 == 0:
            a = bare()
            pairs.append((a, backend(k)))
        else:
            b = backend(k)
            pairs.append((bare(), b))
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", choices=("llama", "instant"), default="llama",
                        help="llama: the llama.cpp server (client_efficiency); instant: replies at once, "
                             "no model (the client's CPU per request, cpu_ratio)")
    parser.add_argument("--questions", type=int, default=None, help="default 48 (llama), 1000 (instant)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=16, help="the runner's chunk (params infer.chunk_size)")
    parser.add_argument("--rounds", type=int, default=4, help="bare/backend alternations (A B, B A, ...), >= 3")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="server (and hf) threads; default: all cores but one, which the clients use")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--no-hf", action="store_true", help="llama: skip the hf fast path and the TV comparison")
    parser.add_argument("--opinionqa-xl", type=Path, default=OPINIONQA_XL)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be >= 3 (the spread needs repetitions)")
    instant = args.endpoint == "instant"

    questions, source = load_questions(args.questions or (1000 if instant else 48), args.opinionqa_xl, args.seed)
    items = make_items(questions)
    settings = MethodSettings(option_orders=1)
    prompts = [p for item in items for p in logprobs.prompts(item, settings)]
    n = len(prompts)
    print(f"endpoint={args.endpoint}; questions={len(items)} from {source}; persona steering ({ATTRIBUTE}/{GROUP}), "
          f"1 option order -> {n} requests; concurrency={args.concurrency} chunk_size={args.chunk_size}"
          + ("" if instant else f" server threads={args.threads}"))

    served: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        root = Path(tmp)

        def backend(k: int) -> Timing:
            nonlocal served
            timing, served = through_backend(url, questions, items, settings, args.concurrency, args.chunk_size,
                                             root / f"run-{k}")
            return timing

        with (serve_instant() if instant else
              serve_embedded(root / "server.log", threads=args.threads, n_ctx=args.n_ctx,
                             extra=["--n_threads_batch", str(args.threads), "--verbose", "false"])) as url:
            warm = 2 * args.concurrency  # one-time costs (imports, connections, environment tags) kept out
            bare_client(url, prompts[:warm], args.concurrency)
            through_backend(url, questions, items[:warm], settings, args.concurrency, args.chunk_size, root / "warm")
            pairs = alternate(args.rounds, lambda: bare_client(url, prompts, args.concurrency), backend)
            for k, (bare, by) in enumerate(pairs):
                print(f"round {k + 1} ({'bare, backend' if k % 2 == 0 else 'backend, bare'}): "
                      f"bare client {n / bare.wall:7.2f} req/s {1000 * bare.cpu / n:6.3f} ms CPU/request; "
                      f"backend {n / by.wall:7.2f} req/s {1000 * by.cpu / n:6.3f} ms CPU/request")

    bare_rps = [n / bare.wall for bare, _ in pairs]
    backend_rps = [n / by.wall for _, by in pairs]
    bare_cpu = [1000 * bare.cpu / n for bare, _ in pairs]
    backend_cpu = [1000 * by.cpu / n for _, by in pairs]
    print(f"median (min-max) over {args.rounds} rounds:")
    print(f"  bare client (openai + {args.concurrency} threads): {spread(bare_rps, '.1f')} req/s, "
          f"client CPU {spread(bare_cpu, '.3f')} ms/request")
    print(f"  openai backend (inference runner):   {spread(backend_rps, '.1f')} req/s, "
          f"client CPU {spread(backend_cpu, '.3f')} ms/request (runner, hashes, parts, table included)")
    cpu_ratios = [b / a for a, b in zip(bare_cpu, backend_cpu)]
    efficiencies = [b / a for a, b in zip(bare_rps, backend_rps)]
    print(f"  backend / bare: CPU per request {spread(cpu_ratios)}, requests/s {spread(efficiencies)}")
    if instant:
        print(f"cpu_ratio={float(np.median(cpu_ratios)):.2f} (median of {args.rounds}; target <= 1.1)")
        return 0
    if not args.no_hf:
        from opinionbench.scoring.metrics import total_variation

        hf_s, local = hf_fast_path(items, settings, args.threads)
        tv = np.array([float(total_variation(served[i.qkey], local[i.qkey])) for i in items])
        print(f"hf fast path (in-process, {args.threads} threads):  {len(items) / hf_s:6.2f} items/s ({hf_s:.2f} s)")
        print(f"TV(openai backend, hf) over {len(items)} questions: mean {tv.mean():.4f} max {tv.max():.4f}")
    print(f"client_efficiency={float(np.median(efficiencies)):.2f} (median of {args.rounds}; target >= 0.95)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
