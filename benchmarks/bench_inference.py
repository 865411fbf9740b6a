"""Inference: the service's overhead over a bare llama-cpp-python call, and what the prompt cache saves.

1. Tokens/s on a 128-token greedy generation, the service's code path (``Generator.process``:
   envelope in, thread hop, our decode loop, envelope out; with and without streaming to a
   sink) side by side with a bare ``Llama.create_completion`` on the same model, params and
   threads, alternating, several rounds; the median of each.
2. Time to first token of a conversation's second turn (with another conversation in
   between, as on a busy worker) with the prompt cache on and off.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from llama_cpp import Llama

from benchmarks.report import Section, table
from services.inference.generator import Generator
from shared.contracts.envelope import ChatMessage, Envelope, Grounding, Prepared, Request, SamplingParams
from shared.models.registry import ModelRegistry
from shared.runtime.settings import CoreSettings

__all__ = ["run"]

THREADS = 2
N_CTX = 1024
TOKENS = 128
ROUNDS = 5
# A base model continues a number sequence for as long as it is allowed: 128 tokens every time.
COUNTING = "Count from 1 to 1000, separated by commas: 1, 2, 3, 4, 5, 6,"
# The same for a chat model, which answers the user message through its template.
COUNTING_CHAT = "Write the numbers from 1 to 500 in words, separated by commas, and nothing else."
SYSTEM = "You are the assistant of a travel agency. Answer briefly and precisely. Facts you may use: " + " ".join(
    f"City {i} has {i * 7 % 13 + 2} museums, {i * 3 % 5 + 1} rivers and a population of {i * 91 % 900 + 100} thousand."
    for i in range(1, 13)
)


def _envelope(model: str, prompt: str, *, max_tokens: int, stream: bool) -> Envelope:
    """A ready-for-inference request: chat models get ``prompt`` as the user message, base models as the text."""
    messages = [ChatMessage(role="user", content=prompt)]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    env = Envelope(request=Request(messages=messages, params=params, stream=stream))
    env.prepared = Prepared(messages=messages, text=prompt, model=model, token_count=0, token_budget=N_CTX)
    env.grounding = Grounding(template_id="bench", template_version=1, messages=messages, prompt=prompt)
    return env


def _render(turns: list[tuple[str, str]], question: str) -> str:
    lines = [SYSTEM + "\n"]
    for user, answer in turns:
        lines += [f"User: {user}", f"Assistant: {answer}"]
    lines += [f"User: {question}", "Assistant:"]
    return "\n".join(lines)


async def _throughput(registry: ModelRegistry, models_dir: Path, model: str) -> list[float]:
    """Median tokens/s: bare, service, service streaming; and the tokens generated bare and by the service."""
    entry = registry.get(model)
    bare = Llama(str(entry.path_in(models_dir)), n_ctx=N_CTX, n_threads=THREADS, n_batch=512, verbose=False)
    chunks: list[Envelope] = []

    async def sink(chunk: Envelope) -> None:
        chunks.append(chunk)

    options = {"n_ctx": N_CTX, "n_threads": THREADS, "n_batch": 512, "n_gpu_layers": 0, "prompt_cache": False}
    gen = Generator(registry, models_dir, model=model, engine_options=options, on_chunk=sink)
    await asyncio.to_thread(gen.warm_up)
    assert gen.engine is not None  # noqa: S101 - warm_up loaded it
    # The exact text the service gives the model (the chat template for chat models).
    text = COUNTING if entry.chat_format == "plain" else COUNTING_CHAT
    rendered = gen.engine.render([ChatMessage(role="user", content=text)], text)
    rates: dict[str, list[float]] = {"bare": [], "service": [], "stream": []}
    counts: dict[str, int] = {}

    async def once(kind: str) -> None:
        if kind == "bare":
            bare.reset()  # same work as the service with the cache off: the whole prompt each time
            t0 = time.perf_counter()
            out = bare.create_completion(rendered, max_tokens=TOKENS, temperature=0.0)
            elapsed = time.perf_counter() - t0
            counts[kind] = out["usage"]["completion_tokens"]
        else:
            env = _envelope(model, text, max_tokens=TOKENS, stream=kind == "stream")
            t0 = time.perf_counter()
            done = await gen.process(env)
            elapsed = time.perf_counter() - t0
            assert done.completion is not None  # noqa: S101 - a benchmark's sanity check
            counts[kind] = done.completion.tokens_out
        rates[kind].append(counts[kind] / elapsed)

    try:
        kinds = ["bare", "service", "stream"]
        for round_ in range(ROUNDS):
            # The order rotates each round, so a slow phase of the machine does not always hit the same one.
            for kind in kinds[round_ % 3 :] + kinds[: round_ % 3]:
                await once(kind)
    finally:
        bare.close()
        await gen.close()
    medians = [statistics.median(rates[k]) for k in ("bare", "service", "stream")]
    return [*medians, counts["bare"], counts["service"]]


async def _second_turn_ttft(registry: ModelRegistry, models_dir: Path, model: str, *, cache: bool) -> tuple[float, int]:
    """Median TTFT (ms) of second turns, and the median prompt tokens reused."""
    options = {"n_ctx": N_CTX, "n_threads": THREADS, "n_gpu_layers": 0, "prompt_cache": cache}
    gen = Generator(registry, models_dir, model=model, engine_options=options)
    await asyncio.to_thread(gen.warm_up)
    ttfts: list[float] = []
    reused: list[int] = []
    try:
        for i in range(3):
            first_q = f"Which city has the most museums? ({i})"
            first = await gen.process(_envelope(model, _render([], first_q), max_tokens=24, stream=False))
            assert first.completion is not None  # noqa: S101
            other = _render([], f"Tell me about city {i + 2}.")
            await gen.process(_envelope(model, other, max_tokens=24, stream=False))
            prompt = _render([(first_q, first.completion.text.strip())], "And how many rivers does it have?")
            second = await gen.process(_envelope(model, prompt, max_tokens=8, stream=False))
            assert second.completion is not None  # noqa: S101
            ttfts.append(second.completion.time_to_first_token_ms or 0.0)
            reused.append(second.completion.cached_tokens)
    finally:
        await gen.close()
    return statistics.median(ttfts), int(statistics.median(reused))


async def run() -> Section:
    """Run both measurements on the two registry models (TTFT on the small one)."""
    core = CoreSettings()
    registry = ModelRegistry.load(core.registry_path)
    rows: list[list[object]] = []
    figures: dict[str, float] = {}
    for model in ("gemma-3-270m", "qwen2.5-coder-0.5b-instruct"):
        bare, service, stream, bare_tokens, tokens = await _throughput(registry, core.models_dir, model)
        ratios = f"{service / bare:.1%}", f"{stream / bare:.1%}"
        rows.append([model, f"{int(bare_tokens)} / {int(tokens)}", bare, service, ratios[0], stream, ratios[1]])
        key = model.split("-")[0].split(".")[0]
        figures |= {f"{key}_bare_tps": bare, f"{key}_service_tps": service, f"{key}_service_ratio": service / bare}
        figures[f"{key}_stream_ratio"] = stream / bare
    small = "gemma-3-270m"
    cold_ms, _ = await _second_turn_ttft(registry, core.models_dir, small, cache=False)
    warm_ms, reused = await _second_turn_ttft(registry, core.models_dir, small, cache=True)
    figures |= {"ttft_2nd_turn_no_cache_ms": cold_ms, "ttft_2nd_turn_cache_ms": warm_ms}
    figures["ttft_cache_speedup"] = cold_ms / warm_ms if warm_ms else 0.0
    body = (
        f"CPU, {THREADS} threads, greedy, n_ctx {N_CTX}, median of {ROUNDS} rounds (order rotating); tokens/s over "
        "the whole call (prompt included), the service measured around `Generator.process` (envelope, thread hop, "
        "decode loop).\n\n"
        + table(
            [
                "model",
                "tokens bare / service",
                "bare tok/s",
                "service tok/s",
                "service/bare",
                "streaming tok/s",
                "streaming/bare",
            ],
            rows,
        )
        + f"\n\nSecond turn of a conversation ({small}, ~{len(SYSTEM) // 4} tokens of history, another conversation "
        "served in between), time to first token:\n\n"
        + table(
            ["prompt cache", "TTFT ms", "prompt tokens reused"],
            [["off", cold_ms, 0], ["on", warm_ms, reused], ["speed-up", f"{figures['ttft_cache_speedup']:.1f}x", ""]],
        )
    )
    return Section("Inference: service vs bare llama.cpp, prompt cache", body, figures)
