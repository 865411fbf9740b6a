"""The exactly-once outbox on a real Apache Kafka: outputs and offsets commit together, or nothing does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from shared.runtime.broker import make_broker
from shared.runtime.settings import KafkaSettings
from shared.runtime.transactions import PartitionGate, TransactionalOutbox, next_offsets, outside_record
from shared.stack.topics import ensure_topics


@pytest.fixture
async def topics(kafka: str) -> list[str]:
    """A fresh input and output topic, one partition each."""
    names = [f"txn-{uuid.uuid4().hex[:8]}.in", f"txn-{uuid.uuid4().hex[:8]}.out"]
    await ensure_topics(KafkaSettings(bootstrap=kafka, partitions=1), names)
    return names


@pytest.fixture
async def broker(kafka: str) -> AsyncIterator[KafkaBroker]:
    """A FastStream broker with a transactional producer, as an exactly-once stage builds it."""
    settings = KafkaSettings(bootstrap=kafka, exactly_once=True)
    kafka_broker = make_broker(settings, client_id="txn-test", transactional_id=f"txn-test-{uuid.uuid4().hex}")
    await kafka_broker.start()
    yield kafka_broker
    await kafka_broker.stop()


async def committed_values(bootstrap: str, topic: str) -> list[bytes]:
    """Everything a read_committed consumer finds on the topic's partition 0."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                values += [r.value for r in records if r.value is not None]
        return values
    finally:
        await consumer.stop()


async def group_offset(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    """The group's committed offset on ``tp`` (None when it has none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return None if meta is None or meta.offset < 0 else meta.offset


class TestNextOffsets:
    def test_one_past_the_highest_offset_per_partition(self) -> None:
        """A batch's records become, per partition, the offset after the highest one."""
        records = [("t", 0, 5), ("t", 1, 2), ("t", 0, 7), ("u", 0, 0)]
        assert next_offsets(records) == {
            TopicPartition("t", 0): 8,
            TopicPartition("t", 1): 3,
            TopicPartition("u", 0): 1,
        }


class TestTransactionalOutbox:
    async def test_outputs_and_offsets_commit_together(
        self, kafka: str, broker: KafkaBroker, topics: list[str]
    ) -> None:
        """Recorded publishes appear only at the end, all together, with the group's offset moved past the input."""
        source, out = topics
        group = f"g-{uuid.uuid4().hex[:8]}"
        outbox = TransactionalOutbox(broker, group_id=group)
        offsets = {TopicPartition(source, 0): 42}
        async with outbox.consuming(offsets):
            await outbox.publish(b"a", out, key=b"k")
            await outbox.publish(b"b", out, key=b"k")
            assert await committed_values(kafka, out) == []  # recorded, not sent yet
        assert await committed_values(kafka, out) == [b"a", b"b"]
        assert await group_offset(kafka, group, TopicPartition(source, 0)) == 42
        assert (outbox.committed, outbox.aborted) == (1, 0)

    async def test_a_failure_inside_publishes_nothing_and_commits_no_offset(
        self, kafka: str, broker: KafkaBroker, topics: list[str]
    ) -> None:
        """An error while the record is handled: no output is ever visible and the offset stays where it was."""
        source, out = topics
        group = f"g-{uuid.uuid4().hex[:8]}"
        outbox = TransactionalOutbox(broker, group_id=group)

        async def handle() -> None:
            async with outbox.consuming({TopicPartition(source, 0): 7}):
                await outbox.publish(b"never", out, key=b"k")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await handle()
        assert await committed_values(kafka, out) == []
        assert await group_offset(kafka, group, TopicPartition(source, 0)) is None

    async def test_an_aborted_transaction_is_invisible_to_read_committed(
        self, kafka: str, broker: KafkaBroker, topics: list[str]
    ) -> None:
        """Records of a transaction aborted after they reached the broker are skipped by read_committed readers."""
        _, out = topics
        outbox = TransactionalOutbox(broker, group_id="unused")
        producer = outbox._producer()
        await producer.begin_transaction()
        await (await broker.publish(b"aborted", out, key=b"k", no_confirm=True))
        await producer.abort_transaction()
        await outbox.publish(b"kept", out, key=b"k")  # outside a record: a transaction of its own
        assert await committed_values(kafka, out) == [b"kept"]

    async def test_outside_record_publishes_at_once(self, kafka: str, broker: KafkaBroker, topics: list[str]) -> None:
        """A streamed piece inside a record's handling is visible before the record's own outputs."""
        source, out = topics
        outbox = TransactionalOutbox(broker, group_id=f"g-{uuid.uuid4().hex[:8]}")
        async with outbox.consuming({TopicPartition(source, 0): 1}):
            with outside_record():
                await outbox.publish(b"chunk", out, key=b"k")
            assert await committed_values(kafka, out) == [b"chunk"]
            await outbox.publish(b"final", out, key=b"k")
        assert await committed_values(kafka, out) == [b"chunk", b"final"]

    async def test_concurrent_records_take_turns(self, kafka: str, broker: KafkaBroker, topics: list[str]) -> None:
        """Two records handled at once each commit their own transaction; nothing is lost or mixed."""
        source, out = topics
        outbox = TransactionalOutbox(broker, group_id=f"g-{uuid.uuid4().hex[:8]}")

        async def record(n: int) -> None:
            async with outbox.consuming({TopicPartition(source, 0): n + 1}):
                await asyncio.sleep(0.01 * n)
                await outbox.publish(f"r{n}".encode(), out, key=b"k")

        await asyncio.gather(*(record(n) for n in range(5)))
        assert sorted(await committed_values(kafka, out)) == [f"r{n}".encode() for n in range(5)]
        assert outbox.committed == 5


class TestPartitionGate:
    """A live replica gives partitions up only between transactions, and never handles a record twice."""

    @pytest.fixture
    async def consumer(self, kafka: str, topics: list[str]) -> AsyncIterator[tuple[AIOKafkaConsumer, Any]]:
        """A group consumer of the input topic holding its first record (as FastStream hands it over)."""
        source, _ = topics
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        try:
            for n in range(3):
                await producer.send_and_wait(source, f"r{n}".encode(), partition=0)
        finally:
            await producer.stop()
        reader = AIOKafkaConsumer(
            source,
            bootstrap_servers=kafka,
            group_id=f"g-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await reader.start()
        try:
            record = await asyncio.wait_for(reader.getone(), timeout=30)
            yield reader, record
        finally:
            await reader.stop()

    async def test_a_record_of_the_current_assignment_is_handled(self, consumer: tuple[AIOKafkaConsumer, Any]) -> None:
        reader, record = consumer
        gate = PartitionGate()
        async with gate.holding(reader, [record]) as current:
            assert current == [record]
        assert gate.skipped == 0

    async def test_a_record_fetched_before_the_position_was_reset_is_left_out(
        self, consumer: tuple[AIOKafkaConsumer, Any]
    ) -> None:
        """After a rebalance the kept partition restarts at the committed offset: the record in hand is stale."""
        reader, record = consumer
        reader.seek(TopicPartition(record.topic, record.partition), record.offset)
        gate = PartitionGate()
        async with gate.holding(reader, [record]) as current:
            assert current == []
        assert gate.skipped == 1

    async def test_a_record_of_a_partition_given_up_is_left_out(self, consumer: tuple[AIOKafkaConsumer, Any]) -> None:
        reader, record = consumer
        reader.unsubscribe()
        gate = PartitionGate()
        async with gate.holding(reader, [record]) as current:
            assert current == []

    async def test_a_rebalance_waits_for_the_records_in_hand(self, consumer: tuple[AIOKafkaConsumer, Any]) -> None:
        """on_partitions_revoked returns only once the block handling a record is done."""
        reader, record = consumer
        gate = PartitionGate()
        order: list[str] = []
        async with gate.holding(reader, [record]):
            revoke = asyncio.create_task(gate.on_partitions_revoked({TopicPartition(record.topic, 0)}))
            await asyncio.sleep(0.2)
            assert not revoke.done()
            order.append("committed")
        await asyncio.wait_for(revoke, timeout=5)
        order.append("revoked")
        assert order == ["committed", "revoked"]
