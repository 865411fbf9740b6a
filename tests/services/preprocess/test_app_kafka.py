"""The preprocess service on the real Apache Kafka broker: bad inputs answered and dead-lettered, offsets committed."""

import asyncio
import json
import random

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.preprocess.app import create_service
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from shared.contracts.envelope import Envelope
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, make_envelope, tail_consumer
from tests.services.preprocess.test_app import BAD_INPUTS


async def _collect(consumer: AIOKafkaConsumer, count: int, seconds: float) -> list[bytes]:
    found: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while len(found) < count and loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        found += [r.value for records in batches.values() for r in records if r.value is not None]
    return found


class TestPreprocessOnKafka:
    async def test_bad_inputs_and_a_good_one(self, kafka: str, warm_pre: Preprocessor) -> None:
        """Through the real broker: each bad input gets an error answer and a DLQ record, the good one goes on."""
        core = core_settings(kafka, prefix="pre-kafka.")
        core.kafka.max_message_bytes = 1_048_576
        await ensure_topics(core.kafka, core.topics.all())
        settings = PreprocessSettings(core=core, group_id="pre-kafka-test")
        service = create_service(settings, preprocessor=warm_pre)
        topics = core.topics
        answers = await tail_consumer(core, topics.responses)
        dlq = await tail_consumer(core, topics.dlq)
        out = await tail_consumer(core, topics.preprocessed)
        await service.warm_up()
        await service.broker.start()
        producer = AIOKafkaProducer(bootstrap_servers=kafka, max_request_size=2_000_000)
        await producer.start()
        try:
            good = make_envelope("Please recieve this  message", conversation_id="good-conv")
            for raw, _ in BAD_INPUTS.values():
                await producer.send_and_wait(topics.requests, raw, key=b"bad-conv")
            await producer.send_and_wait(topics.requests, good.to_bytes(), key=b"good-conv")

            [result] = [Envelope.from_bytes(v) for v in await _collect(out, 1, 60)]
            assert result.request_id == good.request_id
            assert result.prepared is not None
            assert result.prepared.text == "Please receive this message"
            replies = {}
            for value in await _collect(answers, len(BAD_INPUTS), 60):
                env = Envelope.from_bytes(value)
                assert env.error is not None
                replies[env.request_id] = env.error.code
            expected = {
                json.loads(raw.decode(errors="replace"))["request_id"]: code for raw, code in BAD_INPUTS.values()
            }
            assert replies == expected
            dead = await _collect(dlq, len(BAD_INPUTS), 30)
            assert sorted(dead) == sorted(raw for raw, _ in BAD_INPUTS.values())

            # Every record's offset was committed once its outputs were acknowledged.
            committed = AIOKafkaConsumer(bootstrap_servers=kafka, group_id="pre-kafka-test", enable_auto_commit=False)
            await committed.start()
            try:
                tps = [TopicPartition(topics.requests, p) for p in range(core.kafka.partitions)]
                ends = await committed.end_offsets(tps)
                for _ in range(50):
                    positions = {tp: await committed.committed(tp) or 0 for tp in tps}
                    if positions == ends:
                        break
                    await asyncio.sleep(0.2)
                assert positions == ends
            finally:
                await committed.stop()
        finally:
            await producer.stop()
            await service.broker.stop()
            for consumer in (answers, dlq, out):
                await consumer.stop()


def _hostile_records(prefix: str) -> list[tuple[str, bytes]]:
    """(what, raw) for each kind of hostile record issue 23 found, as a client's producer could write them."""
    user = [{"role": "user", "content": "hi"}]
    return [
        ("deep", b'{"request_id": "h-deep", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        ("garbage", b"\xff\xfe not json"),
        ("forged-cache", json.dumps({"request_id": "h-cache", "request": {"messages": user}, "cache": {"key": "k"}}).encode()),
        ("forged-kind", json.dumps({"request_id": "h-kind", "request": {"messages": user}, "kind": "final"}).encode()),
        ("internal-reply", json.dumps({"request_id": "h-loop", "messages": user, "reply_to": f"{prefix}preprocessed"}).encode()),
        ("poison-internal-reply", json.dumps({"request_id": "h-ploop", "reply_to": f"{prefix}grounded", "request": 1}).encode()),
        ("other-tenant-reply", json.dumps({"request_id": "h-other", "messages": user, "tenant": "acme", "reply_to": f"{prefix}responses.globex"}).encode()),
        ("unknown-topic-reply", json.dumps({"request_id": "h-gone", "messages": user, "reply_to": "nowhere.at.all"}).encode()),
    ]  # fmt: skip


async def _committed_positions(
    kafka: str, group: str, topic: str, partitions: int
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """The group's committed offsets on ``topic`` once they reach its end (or after 20 s), and the end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        positions: dict[TopicPartition, int] = {}
        for _ in range(100):
            positions = {tp: await consumer.committed(tp) or 0 for tp in tps}
            if positions == ends:
                break
            await asyncio.sleep(0.2)
        return positions, ends
    finally:
        await consumer.stop()


async def _written_topics(kafka: str, prefix: str, allowed: set[str]) -> set[str]:
    """The topics under ``prefix`` (or created since) outside ``allowed`` that hold any record."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    await admin.start()
    await consumer.start()
    try:
        written = set()
        for topic in set(await admin.list_topics()) - allowed:
            if not topic.startswith(prefix) and topic != "nowhere.at.all":
                continue
            parts = ((await consumer.topics()) and consumer.partitions_for_topic(topic)) or set()
            offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
            if any(offsets.values()):
                written.add(topic)
        return written
    finally:
        await consumer.stop()
        await admin.close()


class TestHostileInterleaved:
    async def test_hostile_and_valid_records_interleaved(self, kafka: str, warm_pre: Preprocessor) -> None:
        """Issue 23 on the real broker: every valid request goes on exactly once, the committed offsets reach the
        end of every partition, and nothing is written outside the stage's output, the DLQ and allowed reply topics.
        """
        prefix = "pre-hostile."
        core = core_settings(kafka, prefix=prefix)
        await ensure_topics(core.kafka, core.topics.all())
        service = create_service(PreprocessSettings(core=core, group_id="pre-hostile-test"), preprocessor=warm_pre)
        topics = core.topics
        out = await tail_consumer(core, topics.preprocessed)
        await service.warm_up()
        await service.broker.start()
        producer = AIOKafkaProducer(bootstrap_servers=kafka, max_request_size=2_000_000)
        await producer.start()
        try:
            valid = [make_envelope(f"Question number {i}?", conversation_id=f"conv-{i % 3}") for i in range(12)]
            records = [(f"valid-{i}", env.to_bytes()) for i, env in enumerate(valid)] + _hostile_records(prefix) * 2
            random.Random(23).shuffle(records)  # noqa: S311 - a repeatable interleaving, not a secret
            for i, (_, raw) in enumerate(records):
                await producer.send_and_wait(topics.requests, raw, key=f"conv-{i % 3}".encode())

            results = [Envelope.from_bytes(v) for v in await _collect(out, len(valid) + 1, 90)]
            assert sorted(r.request_id for r in results) == sorted(e.request_id for e in valid)
            positions, ends = await _committed_positions(
                kafka, "pre-hostile-test", topics.requests, core.kafka.partitions
            )
            assert positions == ends
            allowed = {topics.requests, topics.preprocessed, topics.dlq, topics.responses}
            assert await _written_topics(kafka, prefix, allowed) == set()
        finally:
            await producer.stop()
            await service.broker.stop()
