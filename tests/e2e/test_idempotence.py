"""Idempotent producers on by default, seen from the broker: every stage writes with a producer id.

Apache Kafka keeps, per partition, the producers that wrote with an id and sequence numbers (the ones that
cannot leave a duplicate behind when they retry a send). The distribution's ``kafka-transactions.sh
describe-producers`` lists them; a plain producer never appears there. After a request has gone through the
pipeline on the session's broker, each hop's partition that carried it must list one.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.client import LlmopsClient
from shared.runtime.settings import CoreSettings
from tests.infra.helpers import ROOT

pytestmark = pytest.mark.e2e

TRANSACTIONS = ROOT / "infra" / "kafka" / "bin" / "kafka-transactions.sh"


def producer_ids(bootstrap: str, topic: str, partition: int) -> list[int]:
    """The producer ids the broker records for one partition (``describe-producers``)."""
    out = subprocess.run(
        [
            str(TRANSACTIONS),
            *("--bootstrap-server", bootstrap, "describe-producers"),
            *("--topic", topic, "--partition", str(partition)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    lines = [line.split() for line in out.splitlines()[1:] if line.strip()]  # header: ProducerId ProducerEpoch ...
    return [int(fields[0]) for fields in lines]


async def partition_of(core: CoreSettings, topic: str, request_id: str) -> int:
    """The partition of ``topic`` that holds a record of this request (read from the beginning, no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=core.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(core.kafka.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        for _ in range(100):
            for tp, records in (await consumer.getmany(*tps, timeout_ms=500)).items():
                if any(request_id.encode() in (r.value or b"") for r in records):
                    return tp.partition
            if all(await consumer.position(tp) >= ends[tp] for tp in tps):
                break
    finally:
        await consumer.stop()
    raise AssertionError(f"no record of {request_id} on {topic}")


class TestIdempotentProducers:
    async def test_every_hop_was_written_by_an_idempotent_producer(self, pipeline: CoreSettings) -> None:
        """The client's and each stage's writes for one request carry a producer id on the broker."""
        conversation = f"idem-{uuid.uuid4().hex}"
        async with LlmopsClient(pipeline) as client:
            answer = await client.ask("Say OK.", conversation_id=conversation, max_tokens=4, timeout=120)
        assert answer.error is None
        topics = pipeline.topics
        hops = [topics.requests, topics.preprocessed, topics.grounded, topics.checked, topics.generated]
        for topic in [*hops, topics.responses]:
            partition = await partition_of(pipeline, topic, answer.request_id)
            ids = await asyncio.to_thread(producer_ids, pipeline.kafka.bootstrap, topic, partition)
            assert ids, f"{topic}[{partition}] has no idempotent producer"
            assert all(i >= 0 for i in ids)
