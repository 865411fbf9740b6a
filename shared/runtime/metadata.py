"""Which partitions a topic has, from fresh cluster metadata (for readers without a consumer group)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

__all__ = ["topic_partitions"]


async def topic_partitions(
    consumer: AIOKafkaConsumer, topic: str, *, attempts: int = 1, delay_s: float = 0.1
) -> set[int]:
    """The partition ids of ``topic``, or an empty set when it does not exist (after ``attempts`` tries).

    A consumer that subscribes to nothing tracks no topic's metadata, and ``AIOKafkaConsumer.topics()`` returns
    only names, discarding the partitions it fetched; so the cluster's metadata is asked here directly. (On the
    embedded Tansu the consumer's first metadata happened to list every topic; Apache Kafka's does not.)
    """
    for attempt in range(attempts):
        cluster = await consumer._client.fetch_all_metadata()  # noqa: SLF001 - the partitions topics() drops
        partitions = cluster.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        if attempt + 1 < attempts:
            await asyncio.sleep(delay_s)
    return set()
