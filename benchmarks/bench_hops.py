"""Issue 12, benchmark 2: hop latency, a no-op message through the five hops with inference skipped.

The real broker (embedded Tansu) and the real services, with the inference service's
bench-only flag ``LLMOPS_INFERENCE_BENCH_SKIP_GENERATION`` set: it answers every request with
an empty completion without a model, so the end-to-end time is the other four stages' work
plus the six hops (client → preprocess → grounding → safety → inference → postprocess → client).
Transport is end to end minus every stage's own time (the trail).
"""

from __future__ import annotations

import asyncio

from benchmarks.pipeline import embedded_stack, measure
from benchmarks.report import Section, percentile, table

__all__ = ["run"]

MODEL = "gemma-3-270m"
ROUNDS = 200
PROMPT = "ping"
TARGET_TRANSPORT_P50_MS, TARGET_TRANSPORT_P99_MS = 10.0, 40.0


async def run() -> Section:
    """Start a stack with generation skipped, send no-op requests one at a time, split their latency."""
    stack = embedded_stack(MODEL, LLMOPS_INFERENCE_BENCH_SKIP_GENERATION="true")
    await stack.start(timeout=300)
    try:
        split = await measure(stack.core, [PROMPT] * ROUNDS, max_tokens=1, warm=10)
    finally:
        await asyncio.to_thread(stack.stop)
    stage_rows = [[s, percentile(v, 50), percentile(v, 99)] for s, v in split.per_stage.items() if v]
    figures = {
        "noop_e2e_p50_ms": percentile(split.e2e, 50),
        "noop_e2e_p99_ms": percentile(split.e2e, 99),
        "noop_transport_p50_ms": percentile(split.transport, 50),
        "noop_transport_p99_ms": percentile(split.transport, 99),
    }
    body = "\n\n".join(
        [
            (
                f"{len(split.e2e)} no-op requests ({PROMPT!r}) one at a time after 10 warm-up ones, {split.errors} "
                "errors; embedded Tansu broker, the five services as processes, inference answering without a model "
                "(`LLMOPS_INFERENCE_BENCH_SKIP_GENERATION=true`, bench only)."
            ),
            table(
                ["figure", "p50 ms", "p99 ms"],
                [
                    ["end to end (client → 5 stages → client)", figures["noop_e2e_p50_ms"], figures["noop_e2e_p99_ms"]],
                    [
                        "transport, 6 hops (e2e − Σ stage time)",
                        figures["noop_transport_p50_ms"],
                        figures["noop_transport_p99_ms"],
                    ],
                ],
            ),
            "Each stage's own time (trail):\n\n" + table(["stage", "p50 ms", "p99 ms"], stage_rows),
            "Each hop (the next stage's start minus the previous one's end, from the trail's timestamps; the "
            "first from the client's send, the last to the client's receipt):\n\n"
            + table(["hop", "p50 ms", "p99 ms"], split.hop_rows()),
            (
                f"Transport targets: p50 at most {TARGET_TRANSPORT_P50_MS:g} ms, "
                f"p99 at most {TARGET_TRANSPORT_P99_MS:g} ms."
            ),
        ]
    )
    return Section("Hop latency: a no-op request through the five hops, inference skipped", body, figures)
