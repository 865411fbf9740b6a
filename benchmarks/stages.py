"""Throughput of one stage on its own: a backlog of real inputs, 1 or N replicas, outputs counted.

Inputs are captured from a real pipeline run (the records on each stage's input topic), then
re-keyed with fresh request and conversation ids so every copy is a distinct message.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings, TopicSettings
from shared.stack.embedded import STAGES, EmbeddedStack
from shared.stack.topics import ensure_topics

__all__ = ["STAGE_IO", "capture_inputs", "read_values", "stage_throughput"]

# stage → (its input topic, the topic its normal output goes to)
STAGE_IO: dict[str, Callable[[TopicSettings], tuple[str, str]]] = {
    "preprocess": lambda t: (t.requests, t.preprocessed),
    "grounding": lambda t: (t.preprocessed, t.grounded),
    "safety": lambda t: (t.grounded, t.checked),
    "inference": lambda t: (t.checked, t.generated),
    "postprocess": lambda t: (t.generated, t.responses),
}


async def read_values(core: CoreSettings, topic: str, *, timeout_s: float = 3.0) -> list[bytes]:
    """Every record's value on ``topic``, from the beginning, until ``timeout_s`` passes with nothing new."""
    consumer = AIOKafkaConsumer(bootstrap_servers=core.kafka.bootstrap, fetch_max_wait_ms=5)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(core.kafka.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: list[bytes] = []
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=int(timeout_s * 1000))
            if not batch:
                return values
            values += [r.value for records in batch.values() for r in records if r.value]
    finally:
        await consumer.stop()


async def capture_inputs(core: CoreSettings) -> dict[str, list[bytes]]:
    """Each stage's input records as they are on the topics after a pipeline run."""
    captured = {}
    for stage in STAGES:
        topic, _ = STAGE_IO[stage](core.topics)
        captured[stage] = [v for v in await read_values(core, topic) if b'"kind":"chunk"' not in v]
    return captured


def _fresh_copy(raw: bytes) -> Envelope:
    env = Envelope.from_bytes(raw)
    rid = uuid.uuid4().hex
    # No reply_to: postprocess answers on the sub-stack's responses topic, where they are counted.
    return env.model_copy(
        update={"request_id": rid, "conversation_id": rid, "trail": list(env.trail), "deadline": None, "reply_to": None}
    )


async def stage_throughput(
    core: CoreSettings, stage: str, samples: list[bytes], *, replicas: int, count: int, extra_env: dict[str, str]
) -> float:
    """Messages per second one stage sustains with ``replicas`` replicas, from a backlog of ``count``."""
    prefix = f"tp{uuid.uuid4().hex[:6]}."
    sub = core.model_copy(update={"topics": TopicSettings(prefix=prefix)})
    await ensure_topics(sub.kafka, sub.topics.all(), sub.topics.configs())
    in_topic, out_topic = STAGE_IO[stage](sub.topics)
    stack = EmbeddedStack(
        sub, external=True, scale={s: (replicas if s == stage else 0) for s in STAGES}, extra_env=extra_env
    )
    await stack.start(timeout=300)
    consumer = AIOKafkaConsumer(bootstrap_servers=sub.kafka.bootstrap, fetch_max_wait_ms=5)
    await consumer.start()
    tps = [TopicPartition(out_topic, p) for p in range(sub.kafka.partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=sub.kafka.bootstrap, linger_ms=2, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        copies = [_fresh_copy(samples[i % len(samples)]) for i in range(count)]
        t0 = time.perf_counter()
        for env in copies:
            await producer.send(in_topic, env.to_bytes(), key=env.conversation_id.encode())
        await producer.flush()
        seen = 0
        deadline = time.monotonic() + 300
        while seen < count and time.monotonic() < deadline:
            batch = await consumer.getmany(*tps, timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
        elapsed = time.perf_counter() - t0
    finally:
        await producer.stop()
        await consumer.stop()
        await asyncio.to_thread(stack.stop)
    return seen / elapsed
