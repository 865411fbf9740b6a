"""Read a whole topic once, without a consumer group: for state rebuilt from Kafka and for the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.messaging.security import client_security_kwargs
from shared.messaging.settings import KafkaSettings

__all__ = ["TopicRecord", "read_topic"]


@dataclass(frozen=True)
class TopicRecord:
    """One record as read."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


async def read_topic(kafka: KafkaSettings, topic: str, *, timeout_s: float = 5.0) -> list[TopicRecord]:
    """Every record on ``topic`` up to its end when called, by partition then offset.

    ``timeout_s`` bounds each wait for more data: what was read by then is returned.
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
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        records: list[TopicRecord] = []
        pending = {tp for tp in tps if ends[tp] > starts[tp]}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=int(timeout_s * 1000))
            if not batch:
                break
            for tp, messages in batch.items():
                for msg in messages:
                    headers = {k: v.decode("utf-8", "replace") for k, v in msg.headers or ()}
                    records.append(TopicRecord(msg.partition, msg.offset, msg.key, msg.value or b"", headers))
                    if msg.offset + 1 >= ends[tp]:
                        pending.discard(tp)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()
