"""The `openai` backend against a real local server: does it drive the server as fast as a bare client?

One run, same machine, same model (the embedded SmolLM2-135M-Instruct), same questions and the
exact prompts of the `logprobs` method (persona steering, POLPARTY/Republican, one option order,
built with the method's own `prompts`):

1. the llama.cpp server (llama-cpp-python, `python -m llama_cpp.server`) is started on a free
   port of 127.0.0.1 with the embedded GGUF, warmed up once, and stopped at exit whatever happens;
2. bare client: the `openai` client and a thread pool of `--concurrency`, sending the same
   chat-completion requests the backend sends (max_tokens=1, logprobs, top_logprobs) and doing
   nothing with the replies -> requests/s, the server's throughput;
3. backend: the same items through the inference runner (`InferenceRun` + `OpenAIBackend`, same
   concurrency, chunks written as parquet parts as in a real run, into a temporary directory)
   -> requests/s. (2) and (3) alternate for `--rounds` rounds in A B, B A order and each side's
   rate is its requests over its total time, so a drift in other jobs' load weighs on both alike
   rather than deciding the ratio;
4. the hf backend's `logprobs` fast path on the same items, in-process -> items/s;
5. the total variation distance between the openai backend's distributions and the hf ones
   (same weights: hf runs the GGUF dequantised to fp32, llama.cpp computes with the Q4_1 blocks
   and 8-bit activations, and the server lists only the top-20 tokens): mean and max.

Each pass also reports the client process's CPU per request (`time.process_time`): the client's
own cost, which the server's speed and other jobs' load do not blur.

Server flags: the llama-cpp-python server runs one model and serialises completions (it has no
parallel slots or continuous batching), so client concurrency only overlaps each request's HTTP
and Python work with the previous one's compute; `--logits_all true` is what its `logprobs`
needs. Threads (`--threads`, default all cores but one, the other left to the clients): llama.cpp
synchronises its threads with spinning barriers after every operation, so on a shared machine
where another job preempts one of them the others spin; measured on the 2-core development
machine under a load of ~7, 2 threads evaluated prompts at 43-195 ms/token, 1 thread at
15-21 ms/token.

Questions: ../shared/data/opinionqa_xl/opinionqa-xl.json (a seeded sample, refusal options
dropped); without ../shared, the embedded sample wave's questions replicated with numbered
wording (said so in the output).

Usage: python benchmarks/serving.py [--questions 48] [--concurrency 4] [--rounds 2] [--threads N]
Last line: client_efficiency=X.XX (backend requests/s / bare client requests/s; target >= 0.9)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
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
    """(timing, probs by qkey) of an inference run with the openai backend, from a fresh directory."""
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
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=16, help="the runner's chunk (params infer.chunk_size)")
    parser.add_argument("--rounds", type=int, default=2, help="bare/backend alternations (A B, B A, ...)")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="server (and hf) threads; default: all cores but one, which the clients use")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--opinionqa-xl", type=Path, default=OPINIONQA_XL)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from opinionbench.scoring.metrics import total_variation

    questions, source = load_questions(args.questions, args.opinionqa_xl, args.seed)
    items = make_items(questions)
    settings = MethodSettings(option_orders=1)
    prompts = [p for item in items for p in logprobs.prompts(item, settings)]
    print(f"questions={len(items)} from {source}; persona steering ({ATTRIBUTE}/{GROUP}), 1 option order "
          f"-> {len(prompts)} requests; concurrency={args.concurrency} chunk_size={args.chunk_size} "
          f"server threads={args.threads}")

    bare: list[Timing] = []
    served_by: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        with serve_embedded(Path(tmp) / "server.log", threads=args.threads, n_ctx=args.n_ctx,
                            extra=["--n_threads_batch", str(args.threads), "--verbose", "false"]) as url:
            bare_client(url, prompts[: 2 * args.concurrency], args.concurrency)  # warm-up
            served: dict[str, np.ndarray] = {}
            for k in range(args.rounds):  # A B, B A, ...: a drift in other jobs' load weighs on both alike
                for side in (("bare", "backend") if k % 2 == 0 else ("backend", "bare")):
                    if side == "bare":
                        bare.append(bare_client(url, prompts, args.concurrency))
                        continue
                    timing, served = through_backend(url, questions, items, settings, args.concurrency,
                                                     args.chunk_size, Path(tmp) / f"run-{k}")
                    served_by.append(timing)
                print(f"round {k + 1}: bare client {len(prompts) / bare[-1].wall:6.2f} req/s, "
                      f"backend {len(prompts) / served_by[-1].wall:6.2f} req/s")
    hf_s, local = hf_fast_path(items, settings, args.threads)

    n = len(prompts)
    bare_rps = n * len(bare) / sum(t.wall for t in bare)
    backend_rps = n * len(served_by) / sum(t.wall for t in served_by)
    tv = np.array([float(total_variation(served[i.qkey], local[i.qkey])) for i in items])
    print(f"bare client (openai + {args.concurrency} threads): {bare_rps:6.2f} req/s over {args.rounds} passes "
          f"(best {n / min(t.wall for t in bare):.2f}); client CPU {1000 * sum(t.cpu for t in bare) / (n * len(bare)):.1f} ms/request")
    print(f"openai backend (inference runner):   {backend_rps:6.2f} req/s over {args.rounds} passes "
          f"(best {n / min(t.wall for t in served_by):.2f}); client CPU "
          f"{1000 * sum(t.cpu for t in served_by) / (n * len(served_by)):.1f} ms/request (runner, hashes, parts included)")
    print(f"hf fast path (in-process, {args.threads} threads):  {len(items) / hf_s:6.2f} items/s ({hf_s:.2f} s)")
    print(f"TV(openai backend, hf) over {len(items)} questions: mean {tv.mean():.4f} max {tv.max():.4f}")
    print(f"client_efficiency={backend_rps / bare_rps:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
