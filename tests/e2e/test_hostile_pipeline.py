"""Hostile and valid records interleaved through all five stages on the real broker (issue 23).

The preprocess-only version (``tests/services/preprocess/test_app_kafka.py``) proves intake; this one proves the
whole path: every valid request gets exactly one answer, every stage's group commits to the end of its input, no
hostile record travels past intake, and nothing is written outside the pipeline's own topics.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.contracts.envelope import ChatMessage, Envelope, Request, SamplingParams
from shared.contracts.topology import TOPOLOGY, Role, topic_of
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import EmbeddedStack
from tests.conftest import SMALL_MODEL, core_settings, tail_consumer
from tests.kafka_audit import collect, committed_positions, hostile_records, written_topics

pytestmark = pytest.mark.e2e

PREFIX = "hostile."
#: Consumer groups of this stack's own (the session pipeline's llmops-<stage> groups are left alone).
GROUPS = {spec.name: f"hostile-{spec.name}" for spec in TOPOLOGY}


@pytest.fixture(scope="module")
async def hostile_stack(
    kafka: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CoreSettings]:
    """The five services on topics ``hostile.*``, in groups ``hostile-<stage>``, on the small model."""
    core = core_settings(kafka, prefix=PREFIX)
    core.default_model = SMALL_MODEL
    groups = {f"LLMOPS_{stage.upper()}_GROUP_ID": group for stage, group in GROUPS.items()}
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=tmp_path_factory.mktemp("hostile-logs"),
        extra_env={"LLMOPS_QDRANT_PATH": str(tmp_path_factory.mktemp("hostile-qdrant")), **groups},
    )
    try:
        await stack.start(timeout=240)
        yield core
    finally:
        stack.stop()


async def request_ids_on(kafka: str, topic: str, partitions: int) -> list[str]:
    """The request id of every record on ``topic`` (an unreadable record counts as ``"?"``)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, fetch_max_wait_ms=5)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        ids: list[str] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    try:
                        ids.append(Envelope.from_bytes(record.value or b"").request_id)
                    except ValueError:
                        ids.append("?")
        return ids
    finally:
        await consumer.stop()


class TestHostileThroughThePipeline:
    async def test_every_valid_request_answered_once_and_nothing_hostile_travels(
        self, kafka: str, hostile_stack: CoreSettings
    ) -> None:
        core = hostile_stack
        topics = core.topics
        answers = await tail_consumer(core, topics.responses)
        producer = AIOKafkaProducer(bootstrap_servers=kafka, max_request_size=2_000_000)
        await producer.start()
        try:
            valid = [
                Envelope(
                    request=Request(
                        messages=[ChatMessage(role="user", content=f"Say a word about the number {i}.")],
                        params=SamplingParams(max_tokens=3),
                    ),
                    conversation_id=f"conv-{i % 3}",
                )
                for i in range(6)
            ]
            records = [env.to_bytes() for env in valid] + [raw for _, raw in hostile_records(PREFIX)] * 2
            random.Random(25).shuffle(records)  # noqa: S311 - a repeatable interleaving, not a secret
            for i, raw in enumerate(records):
                await producer.send_and_wait(topics.requests, raw, key=f"conv-{i % 3}".encode())

            valid_ids = {env.request_id for env in valid}
            finals: dict[str, int] = {}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 240
            while loop.time() < deadline:
                for value in await collect(answers, 1, 1):
                    answer = Envelope.from_bytes(value)
                    if answer.request_id in valid_ids:
                        finals[answer.request_id] = finals.get(answer.request_id, 0) + 1
                        assert answer.error is None, answer.error
                if set(finals) == valid_ids:
                    deadline = min(deadline, loop.time() + 3)  # a little longer: a second answer would show now
            assert finals == dict.fromkeys(valid_ids, 1)

            # Every stage's group reaches the end of its input: no record stalled a partition.
            for spec in TOPOLOGY:
                topic = topic_of(spec.input, topics)
                positions, ends = await committed_positions(kafka, GROUPS[spec.name], topic, core.kafka.partitions)
                assert positions == ends, spec.name

            # Nothing hostile got past intake: the internal topics carry the valid requests only.
            for role in (Role.PREPROCESSED, Role.GROUNDED, Role.CHECKED, Role.GENERATED):
                travelled = set(await request_ids_on(kafka, topic_of(role, topics), core.kafka.partitions))
                assert travelled == valid_ids, role

            # And nothing went to a topic outside the pipeline's own (no other tenant's, no invented one).
            roles = {role for spec in TOPOLOGY for role in (spec.input, *spec.writes()) if role is not Role.REPLY}
            own = {topic_of(role, topics) for role in roles}
            assert await written_topics(kafka, PREFIX, own | {topics.responses}) == set()
        finally:
            await producer.stop()
            await answers.stop()
