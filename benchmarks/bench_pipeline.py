"""Issue 12: overhead against a bare llama-cpp-python call, hop latency, stage and pipeline throughput.

1. The same 50 prompts answered by the full pipeline (chat model, 64-token answers) and by a bare
   ``Llama.create_chat_completion`` on exactly the messages the pipeline sent the model, interleaved.
2. Transport = end-to-end minus every stage's own time (trail), per request.
3. Throughput of each non-inference stage from a backlog of real captured inputs, with 1 and
   2 replicas (grounding: 1, it owns the local knowledge folder), and of the whole pipeline
   with ``max_tokens=16``.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from benchmarks.pipeline import BROKER_NAMES, BROKERS, LONG_PROMPTS, PROMPTS, Split, embedded_stack
from benchmarks.report import Section, percentile, table
from benchmarks.stages import capture_inputs, stage_throughput
from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.models.registry import ModelRegistry
from shared.runtime.settings import CoreSettings
from shared.stack.brokers import BrokerKind
from shared.stack.embedded import STAGES

CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
MAX_TOKENS = 64
N_PROMPTS = 50
STAGE_BACKLOG = 300


class _BareModel:
    """The chat model loaded by llama-cpp-python in this process: the bare call the pipeline is compared with."""

    def __init__(self, core: CoreSettings) -> None:
        from llama_cpp import Llama  # noqa: PLC0415 - heavy

        entry = ModelRegistry.load().get(CHAT_MODEL)
        path = entry.path_in(core.models_dir)
        self.llm = Llama(str(path), n_ctx=entry.n_ctx, n_threads=os.cpu_count() or 1, verbose=False)
        self.llm.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=4)  # warm
        self.tokens: list[int] = []

    def answer_ms(self, messages: list[dict[str, str]]) -> float:
        """One chat completion's wall time (its completion tokens go to ``tokens``)."""
        t0 = time.perf_counter()
        out = self.llm.create_chat_completion(messages=messages, max_tokens=MAX_TOKENS, temperature=0.0)
        elapsed = (time.perf_counter() - t0) * 1000
        self.tokens.append(int(out["usage"]["completion_tokens"]))
        return elapsed

    def close(self) -> None:
        """Free the model."""
        self.llm.close()


@dataclass
class _Run:
    split: Split
    bare: list[float]
    bare_tokens: list[int]
    pipeline_tokens: list[int]
    pipeline_rps: float
    captured: dict[str, list[bytes]]


async def _pipeline_run(prompts: list[str], broker: BrokerKind) -> _Run:
    """Each prompt through the pipeline, then the same messages through the bare call, in turn.

    Interleaving puts both sides under the same machine conditions (a shared machine's speed drifts
    over minutes); the bare call runs while the stack idles, which measured the same as with the
    stack stopped (bare p50 636.3 vs 635.7 ms, 20 prompts, 2026-12-01).
    """
    # Whole answers (the operator's debugging view): the bare call is given the messages the pipeline built.
    stack = embedded_stack(CHAT_MODEL, broker=broker, LLMOPS_FULL_ANSWERS="true")
    await stack.start(timeout=300)
    bare_model = await asyncio.to_thread(_BareModel, stack.core)
    try:
        split, bare, tokens = Split(), [], []
        async with LlmopsClient(stack.core) as client:
            for prompt in PROMPTS[:3]:
                await client.ask(prompt, max_tokens=MAX_TOKENS, temperature=0.0, raise_on_error=False)
            for prompt in prompts:
                t0 = time.perf_counter()
                answer: Envelope = await client.ask(
                    prompt, max_tokens=MAX_TOKENS, temperature=0.0, raise_on_error=False
                )
                split.add(answer, (time.perf_counter() - t0) * 1000)
                if answer.grounding is None or answer.completion is None:
                    continue
                tokens.append(answer.completion.tokens_out)
                messages = [m.model_dump() for m in answer.grounding.messages]
                bare.append(await asyncio.to_thread(bare_model.answer_ms, messages))
            # Whole-pipeline throughput: many requests at once, small answers.
            t0 = time.perf_counter()
            answers = await asyncio.gather(
                *(client.ask(f"Say the number {i}.", max_tokens=16, raise_on_error=False) for i in range(40))
            )
            pipeline_rps = len([a for a in answers if a.error is None]) / (time.perf_counter() - t0)
        captured = await capture_inputs(stack.core)
    finally:
        await asyncio.to_thread(bare_model.close)
        await asyncio.to_thread(stack.stop)
    return _Run(split, bare, bare_model.tokens, tokens, pipeline_rps, captured)


async def run() -> Section:
    """Run every part on each broker (stage throughput on Apache Kafka) and format the section."""
    runs = {broker: await _pipeline_run(LONG_PROMPTS[:N_PROMPTS], broker) for broker in BROKERS}

    throughput: list[list[object]] = []
    stack = embedded_stack(CHAT_MODEL, broker="kafka")
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
                    runs["kafka"].captured[stage],
                    replicas=replicas,
                    count=STAGE_BACKLOG,
                    extra_env=stack.extra_env | stack.client_env,
                )
                row.append(f"{rps:.0f}")
            throughput.append(row)
    finally:
        await asyncio.to_thread(stack.stop)

    figures: dict[str, float] = {}
    summary: list[list[object]] = []
    details: list[str] = []
    for broker, measured in runs.items():
        split, bare = measured.split, measured.bare
        these = split.figures() | {
            "bare_p50_ms": percentile(bare, 50),
            "bare_p99_ms": percentile(bare, 99),
            "pipeline_rps_16_tokens": measured.pipeline_rps,
            "pipeline_tokens_p50": percentile([float(t) for t in measured.pipeline_tokens], 50),
            "bare_tokens_p50": percentile([float(t) for t in measured.bare_tokens], 50),
        }
        these["e2e_over_bare_p50"] = these["e2e_p50_ms"] / these["bare_p50_ms"] if these["bare_p50_ms"] else 0.0
        figures |= {f"{key}_{broker}": value for key, value in these.items()}
        summary.append(
            [
                BROKER_NAMES[broker],
                these["bare_p50_ms"],
                these["e2e_p50_ms"],
                these["e2e_p99_ms"],
                these["overhead_p50_ms"],
                these["overhead_p99_ms"],
                these["transport_p50_ms"],
                these["transport_p99_ms"],
                f"{these['e2e_over_bare_p50']:.2f}x",
                f"{measured.pipeline_rps:.2f}",
            ]
        )
        stage_rows = [[s, percentile(v, 50), percentile(v, 99)] for s, v in split.per_stage.items() if v]
        details += [
            f"**{BROKER_NAMES[broker]}** (answers p50: pipeline {these['pipeline_tokens_p50']:.0f} tokens, bare "
            f"{these['bare_tokens_p50']:.0f}); each stage's own time (trail):\n\n"
            + table(["stage", "p50 ms", "p99 ms"], stage_rows),
            "Each hop (next stage's start minus the previous one's end, trail timestamps):\n\n"
            + table(["hop", "p50 ms", "p99 ms"], split.hop_rows()),
        ]
    body = "\n\n".join(
        [
            (
                f"Model `{CHAT_MODEL}`, {N_PROMPTS} different prompts that each ask for a paragraph, "
                f"`max_tokens={MAX_TOKENS}`, temperature 0, on each broker in turn (a fresh stack each). "
                "The bare call gets exactly the messages the pipeline sent the model, on the same threads, "
                "right after the pipeline answered it (interleaved, so drift in the machine's speed hits both "
                "sides alike; the bare call runs while the stack idles, which measured the same as with the "
                "stack stopped)."
            ),
            table(
                [
                    "broker",
                    "bare p50 ms",
                    "e2e p50 ms",
                    "e2e p99 ms",
                    "overhead p50 ms",
                    "overhead p99 ms",
                    "transport p50 ms",
                    "transport p99 ms",
                    "e2e / bare p50",
                    "requests/s (40 at once, 16 tokens)",
                ],
                summary,
            ),
            "Targets: end to end over bare at most 1.15x p50; transport (6 hops) p50 at most 10 ms, p99 at most 40 ms.",
            *details,
            "Throughput on Apache Kafka from a backlog of "
            f"{STAGE_BACKLOG} real captured inputs (messages/s):\n\n"
            + table(["stage", "1 replica", "2 replicas"], throughput),
        ]
    )
    return Section("Pipeline: overhead, transport, throughput", body, figures)
