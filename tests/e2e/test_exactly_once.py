"""Exactly-once stages (LLMOPS_KAFKA_EXACTLY_ONCE=true) under kill -9, verified on the topics themselves.

A stack of its own (topic prefix ``eos.``) on Apache Kafka, two replicas of every stage (grounding one: it owns
the local knowledge store), the small model and one-token answers: delivery does not depend on the answer.
During 300 requests one replica of each stage in turn is killed with SIGKILL (the supervisor starts it again).
Then every output topic is read from the beginning with ``isolation_level=read_committed``: each request's
result must be there exactly once, on every hop, not only once at the client (which drops duplicates anyway).
The same topics read uncommitted show what the transactions kept out (the aborted writes of the killed replicas).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.client import LlmopsClient
from shared.runtime.metadata import topic_partitions
from shared.runtime.settings import CoreSettings
from shared.stack.brokers import client_env
from shared.stack.embedded import STAGES, EmbeddedStack
from tests.conftest import SMALL_MODEL, core_settings

pytestmark = pytest.mark.e2e

REQUESTS = 300
SCALE = dict.fromkeys(STAGES, 2) | {"grounding": 1}


@pytest.fixture(scope="module")
async def exactly_once(
    kafka: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[CoreSettings, EmbeddedStack]]:
    """The exactly-once stack, supervised; its clients read committed answers."""
    core = core_settings(kafka, prefix="eos.")
    core.default_model = SMALL_MODEL
    core.kafka.exactly_once = True
    stack = EmbeddedStack(
        core,
        external=True,
        scale=SCALE,
        log_dir=tmp_path_factory.mktemp("eos-logs"),
        extra_env={
            **client_env("kafka"),
            "LLMOPS_KAFKA_EXACTLY_ONCE": "true",
            "LLMOPS_QDRANT_PATH": str(tmp_path_factory.mktemp("eos-qdrant")),
        },
    )
    stop = asyncio.Event()
    try:
        await stack.start(timeout=300)
        supervisor = asyncio.create_task(stack.supervise(stop))
        yield core, stack
        stop.set()
        await supervisor
    finally:
        stack.stop()


async def request_ids_on(core: CoreSettings, topic: str, *, committed: bool) -> Counter[str]:
    """How many records of each request id the whole topic holds (stream chunks left out), read to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=core.kafka.bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    counts: Counter[str] = Counter()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await topic_partitions(consumer, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # read_committed: the end is the last stable offset, so nothing still open is waited for.
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=2000)
            for tp in list(pending):
                for record in batches.get(tp, []):
                    body = json.loads(record.value)
                    if body.get("kind") != "chunk":  # envelopes ("request", "final"), turns, usage records
                        counts[str(body["request_id"])] += 1
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return counts


async def partition_ends(core: CoreSettings, topic: str) -> dict[int, tuple[int, int]]:
    """Each partition's last stable offset and high watermark (what read_committed and uncommitted reads reach)."""
    ends: dict[int, list[int]] = {}
    for isolation in ("read_committed", "read_uncommitted"):
        consumer = AIOKafkaConsumer(bootstrap_servers=core.kafka.bootstrap, isolation_level=isolation)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in sorted(await topic_partitions(consumer, topic))]
            for tp, end in (await consumer.end_offsets(tps)).items():
                ends.setdefault(tp.partition, []).append(end)
        finally:
            await consumer.stop()
    return {p: (e[0], e[1]) for p, e in sorted(ends.items())}


class TestExactlyOnce:
    async def test_kill_9_of_each_stage_leaves_each_result_once_on_every_topic(
        self, exactly_once: tuple[CoreSettings, EmbeddedStack]
    ) -> None:
        """300 requests; a replica of each stage killed in turn; every hop's topic holds each request once."""
        core, stack = exactly_once
        victims = [next(s for s in stack.services if s.stage == stage) for stage in STAGES]
        pids = {v.name: v.proc.pid for v in victims if v.proc is not None}
        async with LlmopsClient(core) as client:
            sent = [client.build(f"Number {i}:", max_tokens=1, temperature=0.0, timeout=280) for i in range(REQUESTS)]
            futures = [await client.send(env) for env in sent]
            step = REQUESTS // (len(victims) + 1)
            killed = 0
            for answered, next_answer in enumerate(asyncio.as_completed(futures), start=1):
                await next_answer
                if killed < len(victims) and answered >= step * (killed + 1):
                    victim = victims[killed]
                    assert victim.proc is not None
                    victim.proc.send_signal(signal.SIGKILL)
                    killed += 1
            answers = await asyncio.gather(*futures)
        assert killed == len(victims)
        assert [a.request_id for a in answers] == [e.request_id for e in sent]
        assert not [a.error.code for a in answers if a.error is not None]
        assert all(v.proc is not None and v.proc.pid != pids[v.name] for v in victims), "all were restarted"

        # A request safety refuses goes from safety straight to postprocess (on the generated topic): it never
        # reaches the checked topic (nor inference), and memory keeps no turn of it. Every other topic carries
        # every request.
        everyone = {e.request_id for e in sent}
        refused = {a.request_id for a in answers if a.response is not None and a.response.refused}
        topics = core.topics
        expected = dict.fromkeys(
            (topics.preprocessed, topics.grounded, topics.generated, topics.responses, topics.usage), everyone
        ) | {topics.checked: everyone - refused, topics.turns: everyone - refused}
        for topic, wanted in expected.items():
            counts = await request_ids_on(core, topic, committed=True)
            ours = {rid: n for rid, n in counts.items() if rid in everyone}
            if set(ours) != wanted:
                missing = wanted - set(ours)
                raw = await request_ids_on(core, topic, committed=False)
                ends = await partition_ends(core, topic)
                pytest.fail(
                    f"{topic}: {len(missing)} results missing read_committed, {len(missing & set(raw))} of them"
                    f" there read_uncommitted, {len(set(ours) - wanted)} unexpected ({len(refused)} refused);"
                    f" partition ends (committed, uncommitted): {ends}"
                )
            duplicated = {rid: n for rid, n in ours.items() if n != 1}
            assert not duplicated, f"{topic}: {len(duplicated)} results more than once: {list(duplicated.items())[:3]}"
