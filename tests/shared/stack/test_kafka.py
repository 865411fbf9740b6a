"""Apache Kafka from Maven: brokers and clusters that start, serve, lose a node and stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.stack.kafka import KafkaServer
from shared.stack.processes import free_port


class TestKafkaServer:
    async def test_starts_serves_a_group_and_stops_clean(self, tmp_path: Path) -> None:
        """A node on a free port: topics, an idempotent producer, a consumer group; stopped, its folder is gone."""
        server = KafkaServer("127.0.0.1", free_port(), log_path=tmp_path / "kafka.log")
        await server.start(timeout=120)
        base = server.cluster.base_dir
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap)
            await admin.start()
            await admin.create_topics([NewTopic("t", 2, 1)])
            await admin.close()
            producer = AIOKafkaProducer(bootstrap_servers=server.bootstrap, enable_idempotence=True)
            await producer.start()
            await producer.send_and_wait("t", b"hello", key=b"k")
            await producer.stop()
            consumer = AIOKafkaConsumer(
                "t", bootstrap_servers=server.bootstrap, group_id="g", auto_offset_reset="earliest"
            )
            await consumer.start()
            record = await asyncio.wait_for(consumer.getone(), 60)
            await consumer.commit()
            await consumer.stop()
            assert record.value == b"hello"
        finally:
            server.stop()
        assert server.proc is None
        assert not base.exists()
        assert "Kafka Server started" in (tmp_path / "kafka.log").read_text()
