"""Tests for reading a topic, or a time window of it, without a consumer group (real Apache Kafka broker)."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaProducer

from shared.runtime.topic_reader import read_topic, read_window
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings

# An hour ago, on a whole second: Kafka refuses record timestamps more than an hour ahead of its clock.
BASE_MS = (int(time.time()) - 3600) * 1000


class TestReadWindow:
    async def test_window_by_record_timestamp(self, kafka: str) -> None:
        """Records stamped before since or after until are left out; the whole topic is still readable."""
        core = core_settings(kafka, prefix="reader-test.")
        topic = core.topics.requests
        await ensure_topics(core.kafka, [topic])
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        try:
            for i in range(6):  # one key: one partition, offsets in time order
                await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k", timestamp_ms=BASE_MS + i * 1000)
        finally:
            await producer.stop()
        window = await read_window(core.kafka, topic, since_ms=BASE_MS + 2000, until_ms=BASE_MS + 4000)
        assert [r.value for r in window] == [b"m2", b"m3", b"m4"]
        assert [r.timestamp_ms for r in window] == [BASE_MS + 2000, BASE_MS + 3000, BASE_MS + 4000]
        assert [r.value for r in await read_window(core.kafka, topic, since_ms=BASE_MS + 5500)] == []
        assert len(await read_topic(core.kafka, topic)) == 6
