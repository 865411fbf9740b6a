"""The preprocess service on the real Apache Kafka broker: bad inputs answered and dead-lettered, offsets committed."""

import asyncio
import json
import random

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.preprocess.app import create_service
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from shared.contracts.envelope import Envelope
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, make_envelope, tail_consumer
from tests.fuzz_harness import fuzzed_records
from tests.kafka_audit import collect, committed_positions, hostile_records, written_topics
from tests.services.preprocess.test_app import BAD_INPUTS


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

            [result] = [Envelope.from_bytes(v) for v in await collect(out, 1, 60)]
            assert result.request_id == good.request_id
            assert result.prepared is not None
            assert result.prepared.text == "Please receive this message"
            replies = {}
            for value in await collect(answers, len(BAD_INPUTS), 60):
                env = Envelope.from_bytes(value)
                assert env.error is not None
                replies[env.request_id] = env.error.code
            expected = {
                json.loads(raw.decode(errors="replace"))["request_id"]: code for raw, code in BAD_INPUTS.values()
            }
            assert replies == expected
            dead = await collect(dlq, len(BAD_INPUTS), 30)
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
            hostile = hostile_records(prefix) * 2 + fuzzed_records(40, seed=23)  # by hand, and built by the fuzzer
            records = [(f"valid-{i}", env.to_bytes()) for i, env in enumerate(valid)] + hostile
            random.Random(23).shuffle(records)  # noqa: S311 - a repeatable interleaving, not a secret
            for i, (_, raw) in enumerate(records):
                await producer.send_and_wait(topics.requests, raw, key=f"conv-{i % 3}".encode())

            results = [Envelope.from_bytes(v) for v in await collect(out, len(valid) + 1, 90)]
            assert sorted(r.request_id for r in results) == sorted(e.request_id for e in valid)
            positions, ends = await committed_positions(
                kafka, "pre-hostile-test", topics.requests, core.kafka.partitions
            )
            assert positions == ends
            allowed = {topics.requests, topics.preprocessed, topics.dlq, topics.responses}
            assert await written_topics(kafka, prefix, allowed) == set()
        finally:
            await producer.stop()
            await service.broker.stop()


class TestQuotaAfterFailover:
    async def test_records_a_previous_owner_may_have_admitted_get_no_429(
        self, kafka: str, warm_pre: Preprocessor
    ) -> None:
        """Issue 23, finding 9: a replica taking over a partition admits (and counts) its first batch written
        before it got the partition, though over the limit: the previous owner may have answered them already.
        Requests written afterwards meet the limit."""
        core = core_settings(kafka, prefix="pre-failover.")
        core.kafka.partitions = 1
        core.tenants = {"tenants": {"acme": {"quota": {"requests_per_minute": 1}}}}
        await ensure_topics(core.kafka, core.topics.all())
        settings = PreprocessSettings(core=core, group_id="pre-failover-test", batch_max_records=4)
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        before = [make_envelope("Say hi.", tenant="acme") for _ in range(3)]
        for env in before:  # handled by a replica that stopped before committing them
            await producer.send_and_wait(core.topics.requests, env.to_bytes(), key=b"acme")
        answers = await tail_consumer(core, core.topics.responses)
        out = await tail_consumer(core, core.topics.preprocessed)
        service = create_service(settings, preprocessor=warm_pre)
        await service.warm_up()
        await service.broker.start()
        try:
            passed = [Envelope.from_bytes(v).request_id for v in await collect(out, 3, 60)]
            assert sorted(passed) == sorted(env.request_id for env in before)
            after = make_envelope("Say hi.", tenant="acme")
            await producer.send_and_wait(core.topics.requests, after.to_bytes(), key=b"acme")
            [refused] = [Envelope.from_bytes(v) for v in await collect(answers, 1, 60)]
            assert refused.request_id == after.request_id
            assert refused.error is not None
            assert refused.error.code == "quota_exceeded"
        finally:
            await producer.stop()
            await service.broker.stop()
            for consumer in (answers, out):
                await consumer.stop()
