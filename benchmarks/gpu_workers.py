"""``python -m benchmarks.gpu_workers``: aggregate tokens/s of 1, 2, 4, 8 inference worker processes.

Each worker is what ``python -m services.inference --workers N`` runs per process: one
``LlamaEngine`` (all layers offloaded with ``--gpu``), generating one request at a time.
All workers load, wait at a barrier, then each generates ``--requests`` greedy
``--tokens``-token completions; the figure is every token generated over the wall time.
Run by ``make bench-gpu`` (``scripts/bench_gpu.sh``) on a machine with an NVIDIA GPU;
without ``--gpu`` it gives the CPU figures to put next to them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path

__all__ = ["main", "measure"]

PROMPT = "Count from 1 to 1000, separated by commas: 1, 2, 3, 4, 5, 6,"


@dataclass(frozen=True)
class _Job:
    model: str
    gpu: bool
    threads: int
    tokens: int
    requests: int


def _worker(job: _Job, barrier: Barrier, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from services.inference.engine import LlamaEngine  # noqa: PLC0415 - imported in the child process
    from services.inference.params import GenerationParams  # noqa: PLC0415
    from shared.contracts.envelope import ChatMessage  # noqa: PLC0415
    from shared.models.registry import ModelRegistry  # noqa: PLC0415
    from shared.runtime.settings import CoreSettings  # noqa: PLC0415

    entry = ModelRegistry.load().get(job.model)
    path = entry.path_in(CoreSettings().models_dir)
    engine = LlamaEngine(entry, path, n_gpu_layers=-1 if job.gpu else 0, n_threads=job.threads, n_ctx=1024)
    engine.warm_up(tokens=1)
    params = GenerationParams(max_tokens=job.tokens, temperature=0.0, top_p=1.0, top_k=1, min_p=0.0, repeat_penalty=1.0)
    barrier.wait()
    produced = 0
    for _ in range(job.requests):
        # Chat models render the messages with their template; plain ones complete the prompt.
        produced += engine.generate([ChatMessage(role="user", content=PROMPT)], PROMPT, params).tokens_out
    out.put((produced, engine.offloaded_layers))
    engine.close()


def measure(model: str, workers: int, *, gpu: bool, tokens: int, requests: int) -> tuple[float, int]:
    """Aggregate tokens/s of ``workers`` processes, and the layers each offloaded."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    threads = max(1, (os.cpu_count() or 1) // workers)
    job = _Job(model=model, gpu=gpu, threads=threads, tokens=tokens, requests=requests)
    procs = [ctx.Process(target=_worker, args=(job, barrier, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=600)
    t0 = time.perf_counter()
    results = [out.get(timeout=1800) for _ in procs]
    elapsed = time.perf_counter() - t0
    for proc in procs:
        proc.join()
    return sum(r[0] for r in results) / elapsed, min(r[1] for r in results)


def main(argv: list[str] | None = None) -> int:
    """Print a Markdown table: workers, GPU/CPU, aggregate tokens/s, per-worker tokens/s, layers offloaded."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_workers")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=4, help="generations per worker")
    parser.add_argument("--gpu", action="store_true", help="offload every layer (needs a CUDA build)")
    parser.add_argument("--cpu", action="store_true", help="also measure the CPU (no offload) at each worker count")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    modes = ([True] if args.gpu else []) + ([False] if args.cpu or not args.gpu else [])
    lines = [
        f"{args.model}, {args.tokens}-token greedy generations, {args.requests} per worker",
        "",
        "| workers | device | tokens/s (all workers) | tokens/s per worker | GPU layers |",
        "|---|---|---|---|---|",
    ]
    for workers in args.workers:
        for gpu in modes:
            rate, layers = measure(args.model, workers, gpu=gpu, tokens=args.tokens, requests=args.requests)
            line = f"| {workers} | {'GPU' if gpu else 'CPU'} | {rate:.1f} | {rate / workers:.1f} | {layers} |"
            lines.append(line)
            print(line, flush=True)  # noqa: T201 - progress on the console
    text = "\n".join(lines)
    print("\n" + text)  # noqa: T201 - the result
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
