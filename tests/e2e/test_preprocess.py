"""The batch-consuming preprocess service under a kill -9: at-least-once holds (DESIGN.md §3)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import free_port
from shared.stack.processes import http_status, spawn, stop_process
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, make_envelope, tail_consumer

pytestmark = pytest.mark.e2e

REQUESTS = 1200
KILL_AFTER = 60
CHUNK = 20
CHUNK_PAUSE_S = 0.1


async def _feed(producer: AIOKafkaProducer, topic: str, envs: list[Envelope]) -> None:
    """Produce at a steady pace (about 200 requests a second), not all at once."""
    for start in range(0, len(envs), CHUNK):
        for env in envs[start : start + CHUNK]:
            await producer.send(topic, env.to_bytes(), key=env.conversation_id.encode())
        await producer.flush()
        await asyncio.sleep(CHUNK_PAUSE_S)


def _start(core: CoreSettings, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ) | {
        "LLMOPS_KAFKA_BOOTSTRAP": core.kafka.bootstrap,
        "LLMOPS_TOPIC_PREFIX": core.topics.prefix,
        "LLMOPS_PREPROCESS_HEALTH_PORT": str(port),
        "LLMOPS_PREPROCESS_GROUP_ID": "pre-kill-test",
        "LLMOPS_LOG_FORMAT": "json",
    }
    return spawn([sys.executable, "-m", "services.preprocess"], env=env, log_path=log_path), port


async def _ready(proc: subprocess.Popen[bytes], port: int, timeout: float = 180) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await http_status("127.0.0.1", port, "/readyz") != 200:
        assert proc.poll() is None, "preprocess exited while starting"
        assert loop.time() < deadline, "preprocess not ready"
        await asyncio.sleep(0.5)


async def _ids(consumer: AIOKafkaConsumer, seconds: float, wanted: set[str], seen: set[str]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not wanted <= seen and loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        seen.update(json.loads(r.value)["request_id"] for records in batches.values() for r in records)


class TestPreprocessKill:
    async def test_kill_9_mid_batch_loses_nothing(self, kafka: str, tmp_path: Path) -> None:
        """SIGKILL while batches are in flight: a new replica processes everything not yet committed."""
        core = core_settings(kafka, prefix="pre-kill.")
        await ensure_topics(core.kafka, core.topics.all())
        out = await tail_consumer(core, core.topics.preprocessed)
        proc, port = _start(core, tmp_path / "first.log")
        producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=5)
        await producer.start()
        seen: set[str] = set()
        try:
            await _ready(proc, port)
            envs = [
                make_envelope(f"Request number {i}: plese recieve it", conversation_id=f"k{i % 16}")
                for i in range(REQUESTS)
            ]
            wanted = {e.request_id for e in envs}
            # Requests keep arriving while the replica is killed, so the kill lands mid-stream
            # however fast the replica or however late the tail consumer's first fetch.
            feeding = asyncio.create_task(_feed(producer, core.topics.requests, envs))
            while len(seen) < KILL_AFTER:
                await _ids(out, 0.3, wanted, seen)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            before = len(seen)
            await feeding
            assert before < REQUESTS, "killed too late: everything was already done"
            proc, port = _start(core, tmp_path / "second.log")
            await _ready(proc, port)
            await _ids(out, 120, wanted, seen)
            assert wanted <= seen, f"{len(wanted - seen)} requests lost"
        finally:
            await producer.stop()
            await out.stop()
            stop_process(proc)
