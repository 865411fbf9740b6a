"""The transport floor: what one hop costs on each broker with nothing of ours in the way.

Two processes and aiokafka alone: this one produces a 1.5 KB record and waits for the echo;
the other (``python -m benchmarks.bench_floor echo``) consumes each record and produces it
back. A round trip is two hops; the pipeline has six (client, five stages, client), so six of
these hops are the lowest transport any framework on that broker and client could reach.
On the embedded Tansu at the pipeline's fetch wait (5 ms) and at 1 ms (it answers a fetch when its wait
expires); on Apache Kafka at 100 ms (it answers as soon as data arrives: the wait only bounds idle polls).
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.pipeline import BROKER_NAMES, BROKERS, embedded_stack
from benchmarks.report import Section, percentile, table
from shared.runtime.serve import run as run_on_configured_loop
from shared.stack.brokers import BrokerKind
from shared.stack.embedded import STAGES

__all__ = ["run"]

PING, PONG = "bench.floor.ping", "bench.floor.pong"
PINGS, WARM, GAP_S, VALUE = 200, 20, 0.02, b"x" * 1500
WAITS_MS: dict[BrokerKind, tuple[int, ...]] = {"kafka": (100,), "tansu": (5, 1)}
HOPS_IN_PIPELINE = 6


async def _consumer(bootstrap: str, topic: str, wait_ms: int) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms, enable_auto_commit=False, auto_offset_reset="latest"
    )
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])  # no group: a group join is not what is measured
    await consumer.seek_to_end(tp)
    await consumer.position(tp)
    return consumer


async def _echo(bootstrap: str, wait_ms: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, enable_idempotence=False)
    await producer.start()
    consumer = await _consumer(bootstrap, PING, wait_ms)
    print("ready", flush=True)  # noqa: T201 - the parent waits for this line
    while True:
        record = await consumer.getone()
        await producer.send_and_wait(PONG, record.value, partition=0)


async def _round_trips(bootstrap: str, wait_ms: int) -> list[float]:
    echo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bench_floor", "echo", bootstrap, str(wait_ms), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert echo.stdout is not None  # noqa: S101 - piped above
        await asyncio.wait_for(echo.stdout.readline(), timeout=60)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, enable_idempotence=False)
        await producer.start()
        consumer = await _consumer(bootstrap, PONG, wait_ms)
        out: list[float] = []
        try:
            for _ in range(PINGS + WARM):
                t0 = time.perf_counter()
                await producer.send_and_wait(PING, VALUE, partition=0)
                await asyncio.wait_for(consumer.getone(), timeout=10)
                out.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(GAP_S)
        finally:
            await producer.stop()
            await consumer.stop()
        return out[WARM:]
    finally:
        echo.terminate()
        await asyncio.wait_for(echo.wait(), timeout=10)


async def _broker_round_trips(broker: BrokerKind) -> dict[int, list[float]]:
    """Ping-pong through a fresh broker of ``broker``'s kind, at each of its fetch waits."""
    stack = embedded_stack("gemma-3-270m", broker=broker)
    stack.scale = dict.fromkeys(STAGES, 0)  # the broker only
    await stack.start(timeout=120)
    bootstrap = stack.core.kafka.bootstrap
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(PING, 1, 1), NewTopic(PONG, 1, 1)])
        await admin.close()
        return {wait: await _round_trips(bootstrap, wait) for wait in WAITS_MS[broker]}
    finally:
        await asyncio.to_thread(stack.stop)


async def run() -> Section:
    """Ping-pong through each broker at each of its fetch waits, one broker after the other."""
    results = {broker: await _broker_round_trips(broker) for broker in BROKERS}
    rows, figures = [], {}
    for broker, by_wait in results.items():
        for wait, trips in by_wait.items():
            p50 = percentile(trips, 50)
            figures[f"round_trip_p50_ms_{broker}_wait_{wait}"] = p50
            rows.append(
                [BROKER_NAMES[broker], f"{wait} ms", p50, percentile(trips, 90), p50 / 2, p50 / 2 * HOPS_IN_PIPELINE]
            )
    body = "\n\n".join(
        [
            (
                f"{PINGS} pings of {len(VALUE)} bytes after {WARM} warm-up ones, {GAP_S * 1000:.0f} ms apart, one "
                "partition per topic, consumers by assignment; the echo process runs on the stages' event loop "
                "(`LLMOPS_EVENT_LOOP`), this one on asyncio's."
            ),
            table(
                [
                    "broker",
                    "fetch wait",
                    "round trip p50 ms",
                    "round trip p90 ms",
                    "per hop p50 ms",
                    "six hops p50 ms",
                ],
                rows,
            ),
            (
                "Six hops at this cost are the lowest transport the pipeline could reach on that broker and client; "
                'the target is 10 ms p50 (`docs/performance.md`, "The floor under the target").'
            ),
        ]
    )
    return Section("Transport floor: aiokafka alone, two processes", body, figures)


if __name__ == "__main__" and sys.argv[1:2] == ["echo"]:
    run_on_configured_loop(_echo(sys.argv[2], int(sys.argv[3])))
