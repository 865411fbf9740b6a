import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.runtime.metadata import topic_partitions
from shared.runtime.topic_reader import read_topic
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings


class TestEnsureTopics:
    async def test_creates_with_partitions_and_is_idempotent(self, kafka: str) -> None:
        """All pipeline topics are created with the configured partitions; a second run creates nothing."""
        core = core_settings(kafka, prefix="topics-test.")
        created = await ensure_topics(core.kafka, core.topics.all())
        assert created == core.topics.all()
        assert await ensure_topics(core.kafka, core.topics.all()) == []
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
        await consumer.start()
        try:
            assert await topic_partitions(consumer, "topics-test.requests") == set(range(core.kafka.partitions))
        finally:
            await consumer.stop()

    async def test_the_cache_topic_is_compacted_and_keeps_the_newest_entry_per_key(self, kafka: str) -> None:
        """Created with its configs, the cache topic is compact,delete on the broker; the others keep delete.

        Then the log cleaner is shown doing what the cache relies on: of several entries under one key, a reader
        from the beginning finds only the newest (segments rolled at once for the test; the topic's own settings
        are what the broker describes first).
        """
        core = core_settings(kafka, prefix="compact-test.")
        await ensure_topics(core.kafka, core.topics.all(), core.topics.configs())
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
        await admin.start()
        try:
            resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in (core.topics.cache, core.topics.turns)]
            policies: dict[str, str] = {}
            for _ in range(50):  # a topic just created may not be described by every broker thread yet
                for response in await admin.describe_configs(resources):
                    for resource in response.resources:  # (error code, message, type, name, entries)
                        for entry in resource[4]:  # (name, value, read only, ...)
                            if entry[0] == "cleanup.policy":
                                policies[resource[3]] = entry[1]
                if len(policies) == len(resources):
                    break
                await asyncio.sleep(0.2)
            assert policies == {core.topics.cache: "compact,delete", core.topics.turns: "delete"}
            # The cleaner at work on a topic rolled every 100 ms and cleaned as soon as anything is dirty.
            topic = "compact-test.rolled"
            await admin.create_topics(
                [
                    NewTopic(
                        topic,
                        1,
                        1,
                        topic_configs={
                            "cleanup.policy": "compact",
                            "segment.ms": "100",
                            "min.cleanable.dirty.ratio": "0.001",
                            "delete.retention.ms": "100",
                        },
                    )
                ]
            )
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        try:
            for version in range(5):
                await producer.send_and_wait(topic, f"v{version}".encode(), key=b"exact-key")
                await producer.send_and_wait(topic, f"o{version}".encode(), key=f"other-{version}".encode())
                await asyncio.sleep(0.2)  # each pair in a segment of its own
            # One more record rolls the last pair's segment: the cleaner never touches the active segment.
            await producer.send_and_wait(topic, b"end", key=b"end")
        finally:
            await producer.stop()
        deadline = time.monotonic() + 90
        while True:
            values = [r.value for r in await read_topic(core.kafka, topic)]
            newest_only = [v for v in values if v.startswith(b"v")] == [b"v4"]
            if newest_only or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        assert newest_only, values
        assert {v for v in values if v.startswith(b"o")} == {f"o{i}".encode() for i in range(5)}
        assert values[-1] == b"end"
