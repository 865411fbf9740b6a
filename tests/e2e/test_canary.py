"""Canary aliases on the real broker: the split and stickiness at preprocess, and one answer through every stage."""

from __future__ import annotations

import asyncio
import math
import os
import sys
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.cli.usage import read_usage
from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.models.registry import ModelRegistry
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import EmbeddedStack, free_port
from shared.stack.processes import http_status, spawn, stop_process
from shared.stack.topics import ensure_topics
from tests.conftest import CHAT_MODEL, SMALL_MODEL, core_settings, make_envelope, tail_consumer

pytestmark = pytest.mark.e2e

CONVERSATIONS = 200
CANARY_SHARE = 0.1
SIGMAS = 3
#: The same weights under a second name (a sampling or packaging change is canaried like this).
TWIN = f"{SMALL_MODEL}-twin"


@pytest.fixture(scope="module")
def registry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged registry plus a twin of the small model and two aliases: 90/10 chat/small, 50/50 small/twin."""
    packaged = yaml.safe_load(files("shared.models").joinpath("models.yaml").read_text())
    packaged["models"][TWIN] = {"base": SMALL_MODEL, "description": "the small model under another name"}
    packaged["aliases"] = {
        "chat-canary": {"variants": [{"model": CHAT_MODEL, "weight": 90}, {"model": SMALL_MODEL, "weight": 10}]},
        "tiny-canary": {"variants": [{"model": SMALL_MODEL, "weight": 50}, {"model": TWIN, "weight": 50}]},
    }
    path = tmp_path_factory.mktemp("canary") / "models.yaml"
    path.write_text(yaml.safe_dump(packaged))
    ModelRegistry.load(path)  # a typo here should fail here, not in a service log
    return path


async def _collect(consumer: AIOKafkaConsumer, wanted: set[str], seconds: float) -> dict[str, Envelope]:
    seen: dict[str, Envelope] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not wanted <= set(seen) and loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                env = Envelope.from_bytes(record.value)
                seen[env.request_id] = env
    return seen


class TestCanaryAtPreprocess:
    async def test_split_within_tolerance_and_sticky(self, kafka: str, registry_file: Path, tmp_path: Path) -> None:
        """200 conversations, two turns each, through a real preprocess: 90/10 within 3 sigma, both turns on one variant."""
        core = core_settings(kafka, prefix="canary-pre.")
        await ensure_topics(core.kafka, core.topics.all())
        out = await tail_consumer(core, core.topics.preprocessed)
        port = free_port()
        environ = dict(os.environ) | {
            "LLMOPS_KAFKA_BOOTSTRAP": core.kafka.bootstrap,
            "LLMOPS_TOPIC_PREFIX": core.topics.prefix,
            "LLMOPS_PREPROCESS_HEALTH_PORT": str(port),
            "LLMOPS_REGISTRY_PATH": str(registry_file),
            "LLMOPS_LOG_FORMAT": "json",
        }
        proc = spawn([sys.executable, "-m", "services.preprocess"], env=environ, log_path=tmp_path / "preprocess.log")
        producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=5)
        await producer.start()
        try:
            for _ in range(360):
                assert proc.poll() is None, (tmp_path / "preprocess.log").read_text()[-2000:]
                if await http_status("127.0.0.1", port, "/readyz") == 200:
                    break
                await asyncio.sleep(0.5)
            sent = [
                make_envelope(f"Turn {turn} of conversation {i}", conversation_id=f"conv-{i}")
                for turn in (1, 2)
                for i in range(CONVERSATIONS)
            ]
            for request in sent:
                request.require_request().model = "chat-canary"
                await producer.send(core.topics.requests, request.to_bytes(), key=request.conversation_id.encode())
            await producer.flush()
            seen = await _collect(out, {e.request_id for e in sent}, seconds=240)
        finally:
            await producer.stop()
            await out.stop()
            stop_process(proc, timeout=20)
        assert len(seen) == len(sent)
        variants: dict[str, set[str]] = {}
        for env in seen.values():
            assert env.prepared is not None
            assert env.error is None
            assert env.prepared.alias == "chat-canary"
            variants.setdefault(env.conversation_id, set()).add(env.prepared.model)
        assert all(len(models) == 1 for models in variants.values()), "a conversation changed variant"
        canary = sum(models == {SMALL_MODEL} for models in variants.values())
        expected, sigma = CONVERSATIONS * CANARY_SHARE, math.sqrt(CONVERSATIONS * CANARY_SHARE * (1 - CANARY_SHARE))
        print(f"canary conversations: {canary} of {CONVERSATIONS} (expected {expected:.0f} ± {SIGMAS * sigma:.1f})")  # noqa: T201
        assert abs(canary - expected) <= SIGMAS * sigma


@pytest.fixture(scope="module")
async def canary_stack(
    kafka: str, models_dir: Path, registry_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CoreSettings]:
    """All five services on their own topics, with the canary registry; the small model is the default."""
    core = core_settings(kafka, prefix="canary.")
    core.default_model = SMALL_MODEL
    data = tmp_path_factory.mktemp("canary-stack")
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=data / "logs",
        extra_env={"LLMOPS_QDRANT_PATH": str(data / "qdrant"), "LLMOPS_REGISTRY_PATH": str(registry_file)},
    )
    try:
        await stack.start(timeout=240)
        yield core
    finally:
        stack.stop()


class TestCanaryAnswer:
    async def test_answer_says_which_variant_served_it(self, canary_stack: CoreSettings) -> None:
        """An answer to the alias carries it and its variant through every stage, into the usage record."""
        async with LlmopsClient(canary_stack) as client:
            answer = await client.ask("Say hi.", model="tiny-canary", max_tokens=4, timeout=180)
        assert answer.prepared is not None
        assert answer.completion is not None
        assert answer.prepared.alias == "tiny-canary"
        assert answer.prepared.model in {SMALL_MODEL, TWIN}
        assert answer.completion.model == answer.prepared.model
        assert [t.stage for t in answer.trail] == ["preprocess", "grounding", "safety", "inference", "postprocess"]
        for _ in range(20):
            records = {r.request_id: r for r in await read_usage(canary_stack)}
            if answer.request_id in records:
                break
            await asyncio.sleep(0.25)
        record = records[answer.request_id]
        assert (record.alias, record.model) == ("tiny-canary", answer.prepared.model)
