"""Read a whole topic (or a time window of it) once, without a consumer group: for state rebuilt from Kafka and the CLI.

Partitions are assigned by hand: no group join (the embedded Tansu broker hangs on ad-hoc joins),
no committed offsets, any number of readers at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndTimestamp

from shared.runtime.metadata import topic_partitions
from shared.runtime.security import client_security_kwargs
from shared.runtime.settings import KafkaSettings

__all__ = ["TopicRecord", "read_topic", "read_window"]


@dataclass(frozen=True)
class TopicRecord:
    """One record as read."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    timestamp_ms: int | None = None


def _in_window(timestamp_ms: int, since_ms: int | None, until_ms: int | None) -> bool:
    return (since_ms is None or timestamp_ms >= since_ms) and (until_ms is None or timestamp_ms <= until_ms)


async def _window_starts(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], since_ms: int | None, ends: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Per partition, the first offset stamped at or after ``since_ms`` (its end when none is that late)."""
    starts: dict[TopicPartition, int] = await consumer.beginning_offsets(tps)
    if since_ms is None:
        return starts
    try:
        found: dict[TopicPartition, OffsetAndTimestamp | None] = await consumer.offsets_for_times(
            dict.fromkeys(tps, since_ms)
        )
    except (KafkaError, TimeoutError):
        return starts  # a broker without the timestamp lookup: read from the beginning, the timestamps filter
    for tp in tps:
        if tp in found:
            hit = found[tp]
            starts[tp] = ends[tp] if hit is None else hit.offset
    return starts


async def read_topic(kafka: KafkaSettings, topic: str, *, timeout_s: float = 5.0) -> list[TopicRecord]:
    """Every record on ``topic`` up to its end when called, by partition then offset.

    ``timeout_s`` bounds each wait for more data: what was read by then is returned.
    """
    return await read_window(kafka, topic, timeout_s=timeout_s)


async def read_window(
    kafka: KafkaSettings,
    topic: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    timeout_s: float = 5.0,
) -> list[TopicRecord]:
    """The records of ``topic`` written from ``since_ms`` to ``until_ms`` (epoch ms, both inclusive; ``None``: open).

    Each partition is read from the first offset at or after ``since_ms`` (``offsets_for_times``) to
    its end when called; records stamped after ``until_ms`` are left out. By partition then offset.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        enable_auto_commit=False,
        max_partition_fetch_bytes=kafka.max_message_bytes + 64 * 1024,
        **client_security_kwargs(kafka),
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await _window_starts(consumer, tps, since_ms, ends)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        records: list[TopicRecord] = []
        pending = {tp for tp in tps if ends[tp] > starts[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=int(timeout_s * 1000))
            if not batch:
                break
            for tp, messages in batch.items():
                for msg in messages:
                    if msg.offset < ends[tp] and _in_window(msg.timestamp, since_ms, until_ms):
                        headers = {k: v.decode("utf-8", "replace") for k, v in msg.headers or ()}
                        value = msg.value or b""
                        records.append(TopicRecord(msg.partition, msg.offset, msg.key, value, headers, msg.timestamp))
                    if msg.offset + 1 >= ends[tp]:
                        pending.discard(tp)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
