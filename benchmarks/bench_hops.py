"""Issue 12, benchmark 2: hop latency, a no-op message through the five hops with inference skipped.

Each real broker (Apache Kafka from Maven, then the embedded Tansu, in the same run) and the real
services, with the inference service's bench-only flag ``LLMOPS_INFERENCE_BENCH_SKIP_GENERATION`` set:
it answers every request with an empty completion without a model, so the end-to-end time is the other four stages' work
plus the six hops (client → preprocess → grounding → safety → inference → postprocess → client).
Transport is end to end minus every stage's own time (the trail).
"""

from __future__ import annotations

import asyncio

from benchmarks.pipeline import BROKER_NAMES, BROKERS, Split, embedded_stack, measure
from benchmarks.report import Section, percentile, table
from shared.stack.brokers import BrokerKind

__all__ = ["run"]

MODEL = "gemma-3-270m"
ROUNDS = 200
PROMPT = "ping"
TARGET_TRANSPORT_P50_MS, TARGET_TRANSPORT_P99_MS = 10.0, 40.0


async def _measure(broker: BrokerKind) -> Split:
    """A stack on ``broker`` with generation skipped; no-op requests one at a time."""
    stack = embedded_stack(MODEL, broker=broker, LLMOPS_INFERENCE_BENCH_SKIP_GENERATION="true")
    await stack.start(timeout=300)
    try:
        return await measure(stack.core, [PROMPT] * ROUNDS, max_tokens=1, warm=10)
    finally:
        await asyncio.to_thread(stack.stop)


async def run() -> Section:
    """The same no-op requests through the five hops on each broker, one broker after the other, same run."""
    splits = {broker: await _measure(broker) for broker in BROKERS}
    figures: dict[str, float] = {}
    parts = [
        (
            f"{ROUNDS} no-op requests ({PROMPT!r}) one at a time after 10 warm-up ones on each broker, the five "
            "services as processes with the client settings `llmops up` gives each broker "
            "(`shared/stack/brokers.py`), inference answering without a model "
            "(`LLMOPS_INFERENCE_BENCH_SKIP_GENERATION=true`, bench only). Errors: "
            + ", ".join(f"{BROKER_NAMES[b]} {s.errors}" for b, s in splits.items())
            + "."
        )
    ]
    summary = []
    for broker, split in splits.items():
        e2e = (percentile(split.e2e, 50), percentile(split.e2e, 99))
        transport = (percentile(split.transport, 50), percentile(split.transport, 99))
        figures |= {
            f"noop_e2e_p50_ms_{broker}": e2e[0],
            f"noop_e2e_p99_ms_{broker}": e2e[1],
            f"noop_transport_p50_ms_{broker}": transport[0],
            f"noop_transport_p99_ms_{broker}": transport[1],
        }
        summary.append([BROKER_NAMES[broker], *e2e, *transport])
    parts.append(
        table(
            ["broker", "e2e p50 ms", "e2e p99 ms", "transport (6 hops) p50 ms", "transport p99 ms"],
            summary,
        )
    )
    for broker, split in splits.items():
        stage_rows = [[s, percentile(v, 50), percentile(v, 99)] for s, v in split.per_stage.items() if v]
        parts += [
            f"**{BROKER_NAMES[broker]}**, each stage's own time (trail):\n\n"
            + table(["stage", "p50 ms", "p99 ms"], stage_rows),
            "Each hop (the next stage's start minus the previous one's end, from the trail's timestamps; the "
            "first from the client's send, the last to the client's receipt):\n\n"
            + table(["hop", "p50 ms", "p99 ms"], split.hop_rows()),
        ]
    kafka_p50, kafka_p99 = figures["noop_transport_p50_ms_kafka"], figures["noop_transport_p99_ms_kafka"]
    met = kafka_p50 <= TARGET_TRANSPORT_P50_MS and kafka_p99 <= TARGET_TRANSPORT_P99_MS
    parts.append(
        f"Transport targets on Apache Kafka: p50 at most {TARGET_TRANSPORT_P50_MS:g} ms, p99 at most "
        f"{TARGET_TRANSPORT_P99_MS:g} ms: measured {kafka_p50:.1f} / {kafka_p99:.1f} ms, "
        + ("**met**." if met else "**missed**.")
    )
    return Section("Hop latency: a no-op request through the five hops, inference skipped", "\n\n".join(parts), figures)
