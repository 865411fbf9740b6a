"""`llmops replay` through the real pipeline: recorded traffic replayed into the shadow topic, users untouched."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.contracts.turn import Turn
from shared.runtime.metadata import topic_partitions
from shared.runtime.settings import CoreSettings
from shared.runtime.topic_reader import read_topic
from tests.conftest import SMALL_MODEL
from tests.e2e.test_eval import llmops

pytestmark = pytest.mark.e2e

FEW: dict[str, Any] = {"max_tokens": 8, "temperature": 0.0, "seed": 1}
# Allowed by the default policy, refused by the clinic's (a banned topic): the candidate gains a refusal.
DIAGNOSIS = "I have a high fever and a rash on my arms, what disease do I have and what dose of pills should I take?"


async def end_offsets(core: CoreSettings, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic`` (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=core.kafka.bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await topic_partitions(consumer, topic))]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def turns_of(core: CoreSettings, tenant: str) -> list[Turn]:
    """The finished turns of ``tenant`` on the turns topic (what grounding's memory is fed from)."""
    turns = [Turn.model_validate_json(r.value) for r in await read_topic(core.kafka, core.topics.turns)]
    return [t for t in turns if t.tenant == tenant]


async def shadow_answers(core: CoreSettings, tenant: str, original_ids: list[str]) -> dict[str, Envelope]:
    """The tenant's shadow answers, one per original (by replay_of), checked: marked, fresh conversations, candidate."""
    records = await read_topic(core.kafka, core.topics.shadow_responses)
    answers = [
        env for env in (Envelope.from_bytes(r.value) for r in records) if env.tenant == tenant and env.kind == "final"
    ]
    replay_of = {a.require_request().metadata["replay_of"]: a for a in answers}
    assert sorted(replay_of) == sorted(original_ids)
    for answer in answers:
        assert answer.require_request().metadata["shadow"] == "replay"
        assert answer.conversation_id.startswith("replay-")
        assert answer.request_id not in original_ids
    first = replay_of[original_ids[0]]
    assert first.error is None
    assert first.grounding is not None
    assert first.grounding.template_id == "concise"
    assert first.completion is not None
    assert first.completion.model == SMALL_MODEL
    diagnosis = replay_of[original_ids[2]].safety  # checked under the clinic's policy
    assert diagnosis is not None
    assert (diagnosis.verdict, diagnosis.category) == ("block", "banned_topics.medical_diagnosis")
    return replay_of


def check_report(out: Path, original_ids: list[str], shadow_ids: dict[str, str]) -> None:
    """replay.json pairs each original with its shadow answer and counts the refusal gained; md and png exist."""
    report = json.loads((out / "replay.json").read_text())
    summary = report["summary"]
    assert summary["candidate"] == f"model={SMALL_MODEL},template=concise@1,policy=clinic"
    assert (summary["replayed"], summary["compared"]) == (3, 3)
    assert (summary["missing_original"], summary["missing_shadow"], summary["errors_shadow"]) == (0, 0, 0)
    assert (summary["refusals_gained"], summary["refusals_lost"]) == (1, 0)
    pairs = {p["pair"]["request_id"]: p for p in report["pairs"]}
    assert sorted(pairs) == sorted(original_ids)
    for rid in original_ids:
        assert pairs[rid]["pair"]["shadow_request_id"] == shadow_ids[rid]
        assert -1.0 <= pairs[rid]["similarity"] <= 1.0001
        assert pairs[rid]["pair"]["original"]["latency_ms"] > 0
        assert pairs[rid]["pair"]["shadow"]["latency_ms"] > 0
    assert pairs[original_ids[2]]["refusal"] == "gained"
    assert (out / "replay.md").read_text().startswith(f"# Replay: model={SMALL_MODEL}")
    assert (out / "replay.png").read_bytes().startswith(b"\x89PNG")


class TestReplayEndToEnd:
    async def test_replay_into_the_shadow_topic_leaves_users_and_memory_alone(
        self, pipeline: CoreSettings, qdrant_path: Path, tmp_path: Path
    ) -> None:
        """Shadow answers arrive on the shadow topic paired with the originals; reply topic and memory gain nothing."""
        tenant = f"e2e-replay-{uuid.uuid4().hex[:8]}"
        conversation = f"conv-{uuid.uuid4().hex[:8]}"
        since = datetime.now(UTC) - timedelta(seconds=1)
        async with LlmopsClient(pipeline, tenant=tenant) as client:
            originals = [
                await client.ask(
                    "What is the capital of France?", conversation_id=conversation, model=SMALL_MODEL, **FEW
                ),
                await client.ask("And of Italy?", conversation_id=conversation, model=SMALL_MODEL, **FEW),
                await client.ask(DIAGNOSIS, model=SMALL_MODEL, **FEW),
            ]
            # A live request may not name the shadow topic: refused, answered on the default topic.
            forged = client.build("Hi", model=SMALL_MODEL, tenant=f"{tenant}-forged", **FEW)
            forged.reply_to = pipeline.topics.shadow_responses
            refusal = await (await client.send(forged))
            assert refusal.error is not None
            assert refusal.error.code == "reply_topic_not_allowed"
        assert all(a.error is None and a.response is not None for a in originals)
        assert not any(a.response.refused for a in originals if a.response)
        original_ids = [a.request_id for a in originals]

        replies_before = await end_offsets(pipeline, pipeline.topics.responses)
        turns_before = await turns_of(pipeline, tenant)
        # At least once: a request redelivered after a rebalance can leave its turn twice; memory keeps one per id.
        assert {t.request_id for t in turns_before} == set(original_ids)
        shadow_before = await end_offsets(pipeline, pipeline.topics.shadow_responses)

        out = tmp_path / "replay"
        code, stdout, stderr = await llmops(
            pipeline,
            qdrant_path,
            "replay",
            "--since",
            since.isoformat(),
            "--tenant",
            tenant,
            "--candidate",
            f"model={SMALL_MODEL},template=concise@1,policy=clinic",
            "--bootstrap",
            pipeline.kafka.bootstrap,
            "--out",
            str(out),
            "--timeout",
            "240",
        )
        assert code == 0, stdout + stderr

        replay_of = await shadow_answers(pipeline, tenant, original_ids)
        assert sum(shadow_before.values()) < sum(
            (await end_offsets(pipeline, pipeline.topics.shadow_responses)).values()
        )

        # Users' reply topic and conversation memory gained nothing.
        assert await end_offsets(pipeline, pipeline.topics.responses) == replies_before
        assert await turns_of(pipeline, tenant) == turns_before
        async with LlmopsClient(pipeline, tenant=tenant) as client:
            follow_up = await client.ask("And of Spain?", conversation_id=conversation, model=SMALL_MODEL, **FEW)
        assert follow_up.grounding is not None
        assert sorted(m.request_id for m in follow_up.grounding.memory) == sorted(original_ids[:2])

        check_report(out, original_ids, {rid: a.request_id for rid, a in replay_of.items()})
        print("\n" + (out / "replay.md").read_text())  # noqa: T201 - the figures of the run
