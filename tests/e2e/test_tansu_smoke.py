"""The smoke set on the embedded Tansu broker: what `make run` starts still answers, streams, refuses and survives.

The rest of the end-to-end suite runs on Apache Kafka. This module keeps the default of `make run` proven: the
whole pipeline on the session's Tansu broker with the client settings `llmops up` gives it (no idempotent
producer, a 5 ms fetch wait), the default chat model, a poison record and a replica killed mid-generation.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from shared.cli.dlq import read_dlq
from shared.client import LlmopsClient
from shared.runtime.settings import CoreSettings
from shared.stack.brokers import client_env
from shared.stack.embedded import EmbeddedStack
from tests.conftest import core_settings

pytestmark = pytest.mark.e2e

STAGES = ["preprocess", "grounding", "safety", "inference", "postprocess"]


@pytest.fixture(scope="module")
async def on_tansu(
    tansu: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[CoreSettings, EmbeddedStack]]:
    """The five services on the session's Tansu broker (topic prefix smoke.), supervised, as `llmops up` runs them."""
    core = core_settings(tansu, prefix="smoke.")
    core.kafka.enable_idempotence = False  # what `llmops up` does for its own clients on Tansu
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=tmp_path_factory.mktemp("tansu-smoke-logs"),
        extra_env={"LLMOPS_QDRANT_PATH": str(tmp_path_factory.mktemp("smoke-qdrant")), **client_env("tansu")},
    )
    stop = asyncio.Event()
    try:
        await stack.start(timeout=240)
        supervisor = asyncio.create_task(stack.supervise(stop))
        yield core, stack
        stop.set()
        await supervisor
    finally:
        stack.stop()


class TestTansuSmoke:
    def test_the_client_settings_of_tansu(self) -> None:
        """`llmops up` on Tansu turns the idempotent producer off (Tansu refuses its handshake); on Kafka it stays."""
        assert client_env("tansu")["LLMOPS_KAFKA_ENABLE_IDEMPOTENCE"] == "false"
        assert "LLMOPS_KAFKA_ENABLE_IDEMPOTENCE" not in client_env("kafka")

    async def test_answers_through_all_five_stages(self, on_tansu: tuple[CoreSettings, EmbeddedStack]) -> None:
        """The default model answers a simple question, through every stage."""
        core, _ = on_tansu
        async with LlmopsClient(core) as client:
            answer = await client.ask("What is the capital of France?", max_tokens=24, temperature=0.0, timeout=120)
        assert answer.error is None
        assert answer.response is not None
        assert "Paris" in answer.response.text
        assert [t.stage for t in answer.trail] == STAGES

    async def test_streams_chunks_then_the_final(self, on_tansu: tuple[CoreSettings, EmbeddedStack]) -> None:
        """A streamed request yields numbered chunks in order, then one final answer."""
        core, _ = on_tansu
        async with LlmopsClient(core) as client:
            parts = [
                p async for p in client.stream("Write two short sentences about rain.", max_tokens=32, timeout=120)
            ]
        chunks, final = parts[:-1], parts[-1]
        assert final.kind == "final"
        assert final.error is None
        assert chunks
        assert [c.chunk.seq for c in chunks if c.chunk] == list(range(len(chunks)))

    async def test_poison_is_answered_and_dead_lettered(self, on_tansu: tuple[CoreSettings, EmbeddedStack]) -> None:
        """A request of the wrong shape gets an invalid_message answer and a DLQ record; the next one is answered."""
        core, _ = on_tansu
        request_id = uuid.uuid4().hex
        async with LlmopsClient(core) as client:
            producer = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap)
            await producer.start()
            try:
                bad = {"request_id": request_id, "messages": "not a list"}
                await producer.send_and_wait(core.topics.requests, json.dumps(bad).encode(), key=b"smoke")
            finally:
                await producer.stop()
            good = await client.ask("Say OK.", max_tokens=4, timeout=120)
        assert good.error is None
        for _ in range(50):
            records = [r for r in await read_dlq(core) if request_id.encode() in r.value]
            if records:
                break
            await asyncio.sleep(0.2)
        assert records, "the poison record is on the DLQ"
        assert records[0].headers["llmops-stage"] == "preprocess"
        assert records[0].headers["llmops-error-code"] == "invalid_message"

    async def test_kill_9_of_inference_loses_nothing(self, on_tansu: tuple[CoreSettings, EmbeddedStack]) -> None:
        """SIGKILL while inference generates: the restarted replica answers the request, once."""
        core, stack = on_tansu
        victim = next(s for s in stack.services if s.stage == "inference")
        assert victim.proc is not None
        old_pid = victim.proc.pid
        async with LlmopsClient(core) as client:
            future = await client.send(
                client.build(
                    "Write a Python module with 26 functions, one per letter of the alphabet, each with a docstring.",
                    max_tokens=400,
                    temperature=0.0,
                    timeout=200,
                )
            )
            await asyncio.sleep(2.0)
            assert not future.done(), f"answered before the kill: {future.result().model_dump_json()[:2000]}"
            victim.proc.send_signal(signal.SIGKILL)
            answer = await asyncio.wait_for(future, 200)
        assert victim.proc.pid != old_pid
        assert answer.error is None, answer.error
        assert [t.stage for t in answer.trail] == STAGES
