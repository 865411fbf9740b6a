from aiokafka import AIOKafkaConsumer

from shared.stack.topics import ensure_topics
from tests.conftest import core_settings


class TestEnsureTopics:
    async def test_creates_with_partitions_and_is_idempotent(self, tansu: str) -> None:
        """All pipeline topics are created with the configured partitions; a second run creates nothing."""
        core = core_settings(tansu, prefix="topics-test.")
        created = await ensure_topics(core.kafka, core.topics.all())
        assert created == core.topics.all()
        assert await ensure_topics(core.kafka, core.topics.all()) == []
        consumer = AIOKafkaConsumer(bootstrap_servers=tansu)
        await consumer.start()
        try:
            await consumer.topics()
            assert consumer.partitions_for_topic("topics-test.requests") == set(range(core.kafka.partitions))
        finally:
            await consumer.stop()
