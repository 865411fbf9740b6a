"""What exactly-once costs (``LLMOPS_KAFKA_EXACTLY_ONCE=true``): latency and throughput, same run, Apache Kafka.

Two stacks in turn on a fresh Apache Kafka each, one replica per stage, inference answering without a model
(``LLMOPS_INFERENCE_BENCH_SKIP_GENERATION``, bench only) so only the delivery machinery is measured:

- latency: no-op requests one at a time, end to end and transport (e2e minus every stage's own time);
- throughput: a burst of requests sent at once, answered requests per second.

At-least-once publishes each output and then commits the input offset; exactly-once opens a transaction per
record (or batch), publishes the outputs in it, adds the offsets and commits: two more round trips to the
transaction coordinator per record and hop, and transaction markers written to every partition it touched.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks.pipeline import Split, embedded_stack, measure
from benchmarks.report import Section, percentile, table
from shared.client import LlmopsClient
from shared.runtime.settings import CoreSettings

__all__ = ["run"]

MODEL = "gemma-3-270m"
ROUNDS = 150
BURST = 300
MODES = {"at-least-once": "false", "exactly-once": "true"}


async def _burst(core: CoreSettings, count: int) -> float:
    """Answered requests per second when ``count`` no-op requests are sent at once."""
    async with LlmopsClient(core) as client:
        t0 = time.perf_counter()
        answers = await asyncio.gather(
            *(client.ask(f"n{i}", max_tokens=1, raise_on_error=False, timeout=280) for i in range(count))
        )
        elapsed = time.perf_counter() - t0
    return sum(1 for a in answers if a.error is None) / elapsed


async def _measure(exactly_once: str) -> tuple[Split, float]:
    stack = embedded_stack(
        MODEL,
        broker="kafka",
        LLMOPS_INFERENCE_BENCH_SKIP_GENERATION="true",
        LLMOPS_KAFKA_EXACTLY_ONCE=exactly_once,
    )
    stack.core.kafka.exactly_once = exactly_once == "true"  # the client reads committed answers then
    await stack.start(timeout=300)
    try:
        split = await measure(stack.core, ["ping"] * ROUNDS, max_tokens=1, warm=10)
        rps = await _burst(stack.core, BURST)
    finally:
        await asyncio.to_thread(stack.stop)
    return split, rps


async def run() -> Section:
    """Both modes, one after the other, on fresh brokers."""
    results = {mode: await _measure(flag) for mode, flag in MODES.items()}
    figures: dict[str, float] = {}
    rows = []
    for mode, (split, rps) in results.items():
        key = mode.replace("-", "_")
        figures |= {
            f"{key}_e2e_p50_ms": percentile(split.e2e, 50),
            f"{key}_e2e_p99_ms": percentile(split.e2e, 99),
            f"{key}_transport_p50_ms": percentile(split.transport, 50),
            f"{key}_transport_p99_ms": percentile(split.transport, 99),
            f"{key}_rps": rps,
        }
        rows.append(
            [
                mode,
                figures[f"{key}_e2e_p50_ms"],
                figures[f"{key}_e2e_p99_ms"],
                figures[f"{key}_transport_p50_ms"],
                figures[f"{key}_transport_p99_ms"],
                f"{rps:.1f}",
                split.errors,
            ]
        )
    body = "\n\n".join(
        [
            (
                f"{ROUNDS} no-op requests one at a time (after 10 warm-up ones), then {BURST} sent at once, on a "
                "fresh Apache Kafka for each mode; one replica per stage, inference answering without a model "
                "(bench only), so the figures are the delivery machinery's."
            ),
            table(
                [
                    "mode",
                    "e2e p50 ms",
                    "e2e p99 ms",
                    "transport p50 ms",
                    "transport p99 ms",
                    f"requests/s ({BURST} at once)",
                    "errors",
                ],
                rows,
            ),
            (
                "When to use it: `README.md`, Delivery semantics. A generation of a few hundred milliseconds or more "
                "dwarfs the difference; what exactly-once buys is that no stage's topic ever holds a result twice."
            ),
        ]
    )
    return Section("Exactly-once: what Kafka transactions cost", body, figures)
