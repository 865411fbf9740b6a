from aiokafka import AIOKafkaConsumer

from shared.messaging.metadata import topic_partitions
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
