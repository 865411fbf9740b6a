"""The inference service as a real process (two workers) on the real Apache Kafka broker: streaming and scale-out."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts.envelope import Envelope, Safety
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import free_port
from shared.stack.processes import http_status, spawn, stop_process
from shared.stack.topics import ensure_topics
from tests.conftest import SMALL_MODEL, core_settings, tail_consumer
from tests.services.inference.test_generator import ready

pytestmark = pytest.mark.e2e


@dataclass
class Pool:
    """The running ``--workers 2`` process: where it logs, its health port."""

    log: Path
    port: int

    def spawned(self) -> list[dict[str, object]]:
        events: list[dict[str, object]] = []
        for line in self.log.read_text().splitlines():
            if not line.startswith("{"):
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:  # the workers share the log: two lines written at once run together
                continue
        return [e for e in events if e.get("event") == "worker.spawned"]


POOL: dict[str, Pool] = {}


@pytest.fixture(scope="module")
async def workers(
    kafka: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CoreSettings]:
    """``python -m services.inference --workers 2`` on the small model, topics of its own (prefix inference.)."""
    core = core_settings(kafka, prefix="inference.")
    await ensure_topics(core.kafka, core.topics.all())
    port = free_port()
    env = dict(os.environ) | {
        "LLMOPS_KAFKA_BOOTSTRAP": kafka,
        "LLMOPS_TOPIC_PREFIX": core.topics.prefix,
        "LLMOPS_DEFAULT_MODEL": SMALL_MODEL,
        "LLMOPS_INFERENCE_N_CTX": "512",
        "LLMOPS_INFERENCE_HEALTH_PORT": str(port),
        "LLMOPS_INFERENCE_REPLICA": "inf",
        "LLMOPS_LOG_FORMAT": "json",
    }
    log = tmp_path_factory.mktemp("inference-workers") / "inference.log"
    proc = spawn([sys.executable, "-m", "services.inference", "--workers", "2"], env=env, log_path=log)
    try:
        deadline = time.monotonic() + 240
        while await http_status("127.0.0.1", port, "/readyz") != 200:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "workers not ready"
            await asyncio.sleep(0.5)
        POOL["pool"] = Pool(log, port)
        yield core
    finally:
        stop_process(proc, timeout=60)


async def _send(producer: AIOKafkaProducer, core: CoreSettings, env: Envelope) -> None:
    await producer.send_and_wait(core.topics.checked, env.to_bytes(), key=env.conversation_id.encode())


async def _collect(consumer: AIOKafkaConsumer, request_ids: set[str], timeout: float = 120) -> list[Envelope]:
    """Every message for ``request_ids`` on the generated topic, until each has its final one."""
    seen: list[Envelope] = []
    finals: set[str] = set()
    end = time.monotonic() + timeout
    while finals != request_ids:
        assert time.monotonic() < end, f"finals for {len(finals)} of {len(request_ids)} requests"
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                env = Envelope.from_bytes(record.value)
                if env.request_id in request_ids:
                    seen.append(env)
                    if env.kind != "chunk":
                        finals.add(env.request_id)
    return seen


class TestInferenceProcess:
    async def test_streaming_order_and_completeness(self, workers: CoreSettings) -> None:
        """Chunks arrive numbered from 0 with no gap, before the final, and join into its text."""
        consumer = await tail_consumer(workers, workers.topics.generated)
        producer = AIOKafkaProducer(bootstrap_servers=workers.kafka.bootstrap)
        await producer.start()
        try:
            env = ready("Tell me about Paris.", SMALL_MODEL, max_tokens=16, stream=True)
            env.safety = Safety(verdict="allow")
            await _send(producer, workers, env)
            messages = await _collect(consumer, {env.request_id})
        finally:
            await producer.stop()
            await consumer.stop()
        *chunks, final = messages
        assert final.kind == "request"
        assert final.completion is not None
        assert final.completion.tokens_out > 1
        assert [c.chunk.seq for c in chunks if c.chunk] == list(range(len(chunks)))
        assert "".join(c.chunk.text for c in chunks if c.chunk) == final.completion.text
        assert all(c.kind == "chunk" and c.conversation_id == env.conversation_id for c in chunks)

    async def test_two_workers_share_the_load(self, workers: CoreSettings) -> None:
        """Both worker processes consume in one group: conversations spread over them, each answered once."""
        consumer = await tail_consumer(workers, workers.topics.generated)
        producer = AIOKafkaProducer(bootstrap_servers=workers.kafka.bootstrap)
        await producer.start()
        replicas: set[str] = set()
        try:
            end = time.monotonic() + 120
            while len(replicas) < 2:
                assert time.monotonic() < end, f"only {replicas} answered"
                batch = [ready(f"Say {i}.", SMALL_MODEL, max_tokens=2) for i in range(8)]
                for env in batch:
                    await _send(producer, workers, env)
                finals = await _collect(consumer, {e.request_id for e in batch})
                assert sorted(f.request_id for f in finals) == sorted(e.request_id for e in batch)
                replicas |= {f.trail[-1].replica for f in finals}
        finally:
            await producer.stop()
            await consumer.stop()
        assert replicas == {"inf-w0", "inf-w1"}

    async def test_killed_worker_is_replaced(self, workers: CoreSettings) -> None:
        """A worker killed with SIGKILL is restarted by the supervisor and the pool is ready again and serving."""
        pool = POOL["pool"]
        before = pool.spawned()
        victim = next(int(e["pid"]) for e in reversed(before) if e["worker"] == 0)  # type: ignore[call-overload]
        os.kill(victim, signal.SIGKILL)
        end = time.monotonic() + 180
        while len(pool.spawned()) == len(before) or await http_status("127.0.0.1", pool.port, "/readyz") != 200:
            assert time.monotonic() < end, "the killed worker was not replaced"
            await asyncio.sleep(0.5)
        assert pool.spawned()[-1]["worker"] == 0
        consumer = await tail_consumer(workers, workers.topics.generated)
        producer = AIOKafkaProducer(bootstrap_servers=workers.kafka.bootstrap)
        await producer.start()
        try:
            env = ready("Hello", SMALL_MODEL, max_tokens=2)
            await _send(producer, workers, env)
            [final] = await _collect(consumer, {env.request_id})
        finally:
            await producer.stop()
            await consumer.stop()
        assert final.completion is not None
