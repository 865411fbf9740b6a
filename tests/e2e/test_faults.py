"""Delivery under faults (DESIGN.md §3): a replica killed mid-message loses nothing; SIGTERM drains."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.client import LlmopsClient
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import EmbeddedStack, ManagedService
from tests.conftest import SMALL_MODEL, core_settings

pytestmark = pytest.mark.e2e

# A base model continues a number sequence on one line for as long as it is allowed: a long, predictable generation.
LONG = "Count from 1 to 1000, separated by commas: 1, 2, 3, 4, 5, 6,"


@pytest.fixture(scope="module")
async def faults(
    kafka: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[CoreSettings, EmbeddedStack]]:
    """A stack of its own (topic prefix faults.), on the small model, with a supervisor restarting crashed services."""
    core = core_settings(kafka, prefix="faults.")
    core.default_model = SMALL_MODEL
    stack = EmbeddedStack(core, external=True, log_dir=tmp_path_factory.mktemp("fault-logs"))
    stop = asyncio.Event()
    try:
        await stack.start(timeout=240)
        supervisor = asyncio.create_task(stack.supervise(stop))
        yield core, stack
        stop.set()
        await supervisor
    finally:
        stack.stop()


def _inference(stack: EmbeddedStack) -> ManagedService:
    return next(s for s in stack.services if s.stage == "inference")


async def _answers_for(core: CoreSettings, request_id: str, seconds: float) -> int:
    """How many answers with this request id are on the reply topic (read from the beginning)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=core.kafka.bootstrap, fetch_max_wait_ms=5)
    await consumer.start()
    tps = [TopicPartition(core.topics.responses, p) for p in range(core.kafka.partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    count = 0
    try:
        batches = await consumer.getmany(*tps, timeout_ms=int(seconds * 1000))
        for records in batches.values():
            count += sum(1 for r in records if json.loads(r.value)["request_id"] == request_id)
    finally:
        await consumer.stop()
    return count


class TestFaults:
    async def test_kill_9_mid_generation_loses_nothing(self, faults: tuple[CoreSettings, EmbeddedStack]) -> None:
        """SIGKILL of the inference replica while it generates: the restarted replica gets the message again."""
        core, stack = faults
        victim = _inference(stack)
        assert victim.proc is not None
        old_pid = victim.proc.pid
        async with LlmopsClient(core) as client:
            env = client.build(LONG, max_tokens=200, temperature=0.0, timeout=150)
            fut = await client.send(env)
            await asyncio.sleep(1.5)  # the request is in inference now: generation takes several seconds
            assert not fut.done()
            victim.proc.send_signal(signal.SIGKILL)
            answer = await asyncio.wait_for(fut, 150)
        assert victim.proc.pid != old_pid, "the supervisor restarted inference"
        assert answer.error is None
        assert answer.completion is not None
        assert answer.completion.tokens_out > 0
        assert [t.stage for t in answer.trail] == ["preprocess", "grounding", "safety", "inference", "postprocess"]
        assert await _answers_for(core, env.request_id, 3) == 1

    async def test_sigterm_finishes_the_message_in_hand(self, faults: tuple[CoreSettings, EmbeddedStack]) -> None:
        """SIGTERM while generating: the replica finishes and publishes the answer, then exits cleanly."""
        core, stack = faults
        victim = _inference(stack)
        await stack.wait_ready(timeout=120)
        assert victim.proc is not None
        proc = victim.proc
        async with LlmopsClient(core) as client:
            fut = await client.send(client.build(LONG, max_tokens=200, temperature=0.0, timeout=120))
            await asyncio.sleep(1.0)
            assert not fut.done()
            proc.send_signal(signal.SIGTERM)
            answer = await asyncio.wait_for(fut, 60)
        assert answer.error is None
        assert answer.completion is not None
        assert answer.completion.tokens_out >= 100  # so SIGTERM did arrive mid-generation
        assert [t.replica for t in answer.trail if t.stage == "inference"] == ["inference-0"]
        assert await asyncio.to_thread(proc.wait, 40) == 0
