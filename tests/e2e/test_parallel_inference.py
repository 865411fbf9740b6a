"""The inference service with ``LLMOPS_INFERENCE_PARALLEL=4`` as a real process on Apache Kafka.

Requests of one poll are decoded together; a kill -9 while they generate loses none of them (the batch's
offsets were not committed, so a new process gets them again).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.messaging.envelope import Envelope, Safety
from shared.messaging.settings import CoreSettings
from shared.stack.embedded import free_port
from shared.stack.processes import http_status, spawn, stop_process
from shared.stack.topics import ensure_topics
from tests.conftest import SMALL_MODEL, core_settings, tail_consumer
from tests.e2e.test_inference import _collect
from tests.services.inference.test_generator import ready

pytestmark = pytest.mark.e2e

PARALLEL = 4


class ParallelService:
    """``python -m services.inference`` with four sequences in flight; can be killed and started again."""

    def __init__(self, core: CoreSettings, kafka: str, log_dir: Path) -> None:
        self.core = core
        self.port = free_port()
        self.env = dict(os.environ) | {
            "LLMOPS_KAFKA_BOOTSTRAP": kafka,
            "LLMOPS_TOPIC_PREFIX": core.topics.prefix,
            "LLMOPS_DEFAULT_MODEL": SMALL_MODEL,
            "LLMOPS_INFERENCE_N_CTX": "512",
            "LLMOPS_INFERENCE_PARALLEL": str(PARALLEL),
            "LLMOPS_INFERENCE_N_THREADS": "1",
            "LLMOPS_INFERENCE_HEALTH_PORT": str(self.port),
            "LLMOPS_LOG_FORMAT": "json",
        }
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.log_dir / f"inference-{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        self.proc = spawn([sys.executable, "-m", "services.inference"], env=self.env, log_path=self.log)
        deadline = time.monotonic() + 240
        while await http_status("127.0.0.1", self.port, "/readyz") != 200:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "inference not ready"
            await asyncio.sleep(0.5)

    def events(self, name: str) -> list[dict[str, object]]:
        found = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found


@pytest.fixture(scope="module")
async def service(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ParallelService]:
    core = core_settings(kafka, prefix="parallel.")
    await ensure_topics(core.kafka, core.topics.all())
    svc = ParallelService(core, kafka, tmp_path_factory.mktemp("parallel-inference"))
    await svc.start()
    try:
        yield svc
    finally:
        if svc.proc is not None:
            stop_process(svc.proc, timeout=60)


def _requests(count: int, *, max_tokens: int) -> list[Envelope]:
    envs = []
    for i in range(count):
        env = ready(f"Tell me a fact about the number {i}.", SMALL_MODEL, max_tokens=max_tokens, stream=i == 0)
        env.safety = Safety(verdict="allow")
        envs.append(env)
    return envs


async def _send_all(core: CoreSettings, envs: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap)
    await producer.start()
    try:
        for env in envs:
            await producer.send_and_wait(core.topics.checked, env.to_bytes(), key=env.conversation_id.encode())
    finally:
        await producer.stop()


async def _first_chunk(consumer: AIOKafkaConsumer, request_id: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while True:
        assert time.monotonic() < end, "no chunk streamed"
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                env = Envelope.from_bytes(record.value)
                if env.request_id == request_id and env.kind == "chunk":
                    return


class TestParallelInference:
    async def test_eight_requests_in_batches_each_answered_once(self, service: ParallelService) -> None:
        """Eight requests sent at once: batches of up to four generate together; one final answer each."""
        consumer = await tail_consumer(service.core, service.core.topics.generated)
        envs = _requests(8, max_tokens=8)
        try:
            await _send_all(service.core, envs)
            seen = await _collect(consumer, {e.request_id for e in envs}, timeout=180)
        finally:
            await consumer.stop()
        finals = [m for m in seen if m.kind != "chunk"]
        assert sorted(m.request_id for m in finals) == sorted(e.request_id for e in envs)
        assert all(m.completion is not None and m.completion.tokens_out >= 1 for m in finals)
        streamed = [m for m in seen if m.kind == "chunk"]
        assert {m.request_id for m in streamed} <= {envs[0].request_id}
        sizes = [int(e["size"]) for e in service.events("batch.done")]  # type: ignore[call-overload]
        assert max(sizes) > 1, f"no poll handed over more than one request: {sizes}"
        assert max(sizes) <= PARALLEL

    async def test_kill_9_while_generating_loses_nothing(self, service: ParallelService) -> None:
        """SIGKILL with four sequences in flight: a new process gets them again and answers every request."""
        consumer = await tail_consumer(service.core, service.core.topics.generated)
        envs = _requests(PARALLEL, max_tokens=200)
        try:
            await _send_all(service.core, envs)
            await _first_chunk(consumer, envs[0].request_id)  # the batch is generating
            assert service.proc is not None
            os.kill(service.proc.pid, signal.SIGKILL)
            service.proc.wait(timeout=30)
            await service.start()
            seen = await _collect(consumer, {e.request_id for e in envs}, timeout=300)
        finally:
            await consumer.stop()
        finals = [m for m in seen if m.kind != "chunk"]
        assert sorted(m.request_id for m in finals) == sorted(e.request_id for e in envs)
