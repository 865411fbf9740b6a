"""Issue 12: overhead against a bare llama-cpp-python call, hop latency, stage and pipeline throughput.

1. The same prompts answered by the full pipeline (chat model, 64 tokens) and by a bare
   ``Llama.create_chat_completion`` on exactly the messages the pipeline sent the model.
2. Transport = end-to-end minus every stage's own time (trail), per request.
3. Throughput of each non-inference stage from a backlog of real captured inputs, with 1 and
   2 replicas (grounding: 1, it owns the local knowledge folder), and of the whole pipeline
   with ``max_tokens=16``.
"""

from __future__ import annotations

import asyncio
import os
import time

from benchmarks.pipeline import PROMPTS, Split, embedded_stack
from benchmarks.report import Section, percentile, table
from benchmarks.stages import capture_inputs, stage_throughput
from shared.client import LlmopsClient
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import Envelope
from shared.messaging.settings import CoreSettings
from shared.stack.embedded import STAGES

CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
MAX_TOKENS = 64
N_PROMPTS = 50
STAGE_BACKLOG = 300


def _bare_latencies(prompts: list[list[dict[str, str]]], core: CoreSettings) -> list[float]:
    """End-to-end ms of a bare llama-cpp-python chat completion per prompt (same model, threads, tokens)."""
    from llama_cpp import Llama  # noqa: PLC0415 - heavy

    entry = ModelRegistry.load().get(CHAT_MODEL)
    llm = Llama(str(entry.path_in(core.models_dir)), n_ctx=entry.n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
    llm.create_chat_completion(messages=prompts[0], max_tokens=4)  # warm, like the service
    out = []
    for messages in prompts:
        t0 = time.perf_counter()
        llm.create_chat_completion(messages=messages, max_tokens=MAX_TOKENS, temperature=0.0)
        out.append((time.perf_counter() - t0) * 1000)
    llm.close()
    return out


async def _pipeline_run(prompts: list[str]) -> tuple[Split, list[list[dict[str, str]]], dict[str, list[bytes]], float]:
    stack = embedded_stack(CHAT_MODEL)
    await stack.start(timeout=300)
    try:
        split = Split()
        sent_messages: list[list[dict[str, str]]] = []
        async with LlmopsClient(stack.core) as client:
            for prompt in prompts[:3]:
                await client.ask(prompt, max_tokens=MAX_TOKENS, temperature=0.0, raise_on_error=False)
            for prompt in prompts:
                t0 = time.perf_counter()
                answer: Envelope = await client.ask(
                    prompt, max_tokens=MAX_TOKENS, temperature=0.0, raise_on_error=False
                )
                split.add(answer, (time.perf_counter() - t0) * 1000)
                if answer.grounding is not None:
                    sent_messages.append([m.model_dump() for m in answer.grounding.messages])
            # Whole-pipeline throughput: many requests at once, small answers.
            t0 = time.perf_counter()
            answers = await asyncio.gather(
                *(client.ask(f"Say the number {i}.", max_tokens=16, raise_on_error=False) for i in range(40))
            )
            pipeline_rps = len([a for a in answers if a.error is None]) / (time.perf_counter() - t0)
        captured = await capture_inputs(stack.core)
    finally:
        await asyncio.to_thread(stack.stop)
    return split, sent_messages, captured, pipeline_rps


async def run() -> Section:
    """Run every part and format the section."""
    prompts = (PROMPTS * 5)[:N_PROMPTS]
    split, sent_messages, captured, pipeline_rps = await _pipeline_run(prompts)
    bare = await asyncio.to_thread(_bare_latencies, sent_messages, CoreSettings())

    throughput: list[list[object]] = []
    stack = embedded_stack(CHAT_MODEL)
    stack.scale = dict.fromkeys(STAGES, 0)  # only the broker: each stage run starts its own replicas
    await stack.start(timeout=300)
    try:
        for stage in ("preprocess", "grounding", "safety", "postprocess"):
            row: list[object] = [stage]
            for replicas in (1, 2):
                if stage == "grounding" and replicas > 1:
                    row.append("n/a (one replica in embedded mode)")
                    continue
                rps = await stage_throughput(
                    stack.core,
                    stage,
                    captured[stage],
                    replicas=replicas,
                    count=STAGE_BACKLOG,
                    extra_env=stack.extra_env,
                )
                row.append(f"{rps:.0f}")
            throughput.append(row)
    finally:
        await asyncio.to_thread(stack.stop)

    figures = split.figures() | {
        "bare_p50_ms": percentile(bare, 50),
        "bare_p99_ms": percentile(bare, 99),
        "pipeline_rps_16_tokens": pipeline_rps,
    }
    ratio = figures["e2e_p50_ms"] / figures["bare_p50_ms"] if figures["bare_p50_ms"] else 0.0
    figures["e2e_over_bare_p50"] = ratio
    stage_rows = [[s, percentile(v, 50), percentile(v, 99)] for s, v in split.per_stage.items() if v]
    body = "\n\n".join(
        [
            (
                f"Model `{CHAT_MODEL}`, {len(split.e2e)} prompts, `max_tokens={MAX_TOKENS}`, temperature 0; "
                "the bare call gets exactly the messages the pipeline sent the model, on the same threads."
            ),
            table(
                ["figure", "p50 ms", "p99 ms"],
                [
                    ["bare llama-cpp-python", figures["bare_p50_ms"], figures["bare_p99_ms"]],
                    ["pipeline end to end", figures["e2e_p50_ms"], figures["e2e_p99_ms"]],
                    ["pipeline overhead (e2e − generation)", figures["overhead_p50_ms"], figures["overhead_p99_ms"]],
                    [
                        "transport, 6 hops (e2e − Σ stage time)",
                        figures["transport_p50_ms"],
                        figures["transport_p99_ms"],
                    ],
                ],
            ),
            f"End to end over bare, p50: **{ratio:.2f}x** (target at most 1.15x).",
            "Each stage's own time (trail):\n\n" + table(["stage", "p50 ms", "p99 ms"], stage_rows),
            "Each hop (next stage's start minus the previous one's end, trail timestamps):\n\n"
            + table(["hop", "p50 ms", "p99 ms"], split.hop_rows()),
            "Throughput from a backlog of "
            f"{STAGE_BACKLOG} real captured inputs (messages/s):\n\n"
            + table(["stage", "1 replica", "2 replicas"], throughput),
            f"Whole pipeline, 40 concurrent requests, `max_tokens=16`: **{pipeline_rps:.2f} requests/s**.",
        ]
    )
    return Section("Pipeline: overhead, transport, throughput", body, figures)
