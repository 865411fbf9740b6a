"""``python -m benchmarks.gpu_parallel``: aggregate tokens/s of 1, 2, 4, 8 sequences decoded together in one model.

The inference service's engine with ``LLMOPS_INFERENCE_PARALLEL`` > 1 (``BatchedLlamaEngine``): one process,
one copy of the weights (every layer offloaded with ``--gpu``), N client threads each asking ``--requests``
greedy ``--tokens``-token completions at once. The figure is every token generated over the wall time, to
set next to ``benchmarks.gpu_workers`` (N processes, N copies). Run by ``make bench-gpu`` on an NVIDIA GPU;
without ``--gpu`` it gives the CPU figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "measure"]

PROMPT = "Count from 1 to 1000, separated by commas: 1, 2, 3, 4, 5, 6,"


def measure(model: str, sequences: list[int], *, gpu: bool, tokens: int, requests: int) -> list[tuple[int, float, int]]:
    """(sequences, aggregate tokens/s, GPU layers) for each count, on one engine sized for the largest."""
    from services.inference.batched_engine import BatchedLlamaEngine  # noqa: PLC0415 - after the CLI parsed
    from services.inference.params import GenerationParams  # noqa: PLC0415
    from shared.contracts.envelope import ChatMessage  # noqa: PLC0415
    from shared.models.registry import ModelRegistry  # noqa: PLC0415
    from shared.runtime.settings import CoreSettings  # noqa: PLC0415

    entry = ModelRegistry.load().get(model)
    engine = BatchedLlamaEngine(
        entry,
        entry.path_in(CoreSettings().models_dir),
        parallel=max(sequences),
        n_gpu_layers=-1 if gpu else 0,
        n_threads=os.cpu_count() or 1,
        n_ctx=1024,
    )
    engine.warm_up(tokens=1)
    params = GenerationParams(max_tokens=tokens, temperature=0.0, top_p=1.0, top_k=1, min_p=0.0, repeat_penalty=1.0)
    rows = []
    try:
        for count in sequences:
            produced = [0] * count

            def client(i: int) -> None:
                for r in range(requests):
                    # A different prompt each time: no request reuses another's cached prefix.
                    text = f"{i}-{r}. {PROMPT}"
                    messages = [ChatMessage(role="user", content=text)]
                    produced[i] += engine.generate(messages, text, params).tokens_out  # noqa: B023

            threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rows.append((count, sum(produced) / (time.perf_counter() - t0), engine.offloaded_layers))
    finally:
        engine.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print (and append to ``--out``) a Markdown table: sequences, device, aggregate and per-sequence tokens/s."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_parallel")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--sequences", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=4, help="generations per client thread")
    parser.add_argument("--gpu", action="store_true", help="offload every layer (needs a CUDA build)")
    parser.add_argument("--cpu", action="store_true", help="also measure the CPU (no offload)")
    parser.add_argument("--out", type=Path, help="also append the table to this file")
    args = parser.parse_args(argv)
    modes = ([True] if args.gpu else []) + ([False] if args.cpu or not args.gpu else [])
    lines = [
        "",
        (
            f"Sequences decoded together in one process (`LLMOPS_INFERENCE_PARALLEL`), {args.model}, "
            f"{args.tokens}-token greedy generations, {args.requests} per client"
        ),
        "",
        "| sequences | device | tokens/s (all) | tokens/s per sequence | GPU layers |",
        "|---|---|---|---|---|",
    ]
    for gpu in modes:
        for count, rate, layers in measure(
            args.model, args.sequences, gpu=gpu, tokens=args.tokens, requests=args.requests
        ):
            line = f"| {count} | {'GPU' if gpu else 'CPU'} | {rate:.1f} | {rate / count:.1f} | {layers} |"
            lines.append(line)
            print(line, flush=True)  # noqa: T201 - progress on the console
    text = "\n".join(lines)
    print(text)  # noqa: T201 - the result
    if args.out:
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
