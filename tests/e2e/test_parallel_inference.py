"""The inference service with ``LLMOPS_INFERENCE_PARALLEL=4`` as a real process on Apache Kafka.

Requests are decoded together, a request joins the ones already generating, offsets are committed only up
to the lowest request still generating, and a kill -9 while they generate loses none of them.
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
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.contracts.envelope import Envelope, Safety
from shared.runtime.settings import CoreSettings
from shared.stack.embedded import free_port
from shared.stack.processes import http_status, spawn, stop_process
from shared.stack.topics import ensure_topics
from tests.conftest import SMALL_MODEL, core_settings, tail_consumer
from tests.e2e.test_inference import _collect
from tests.services.inference.test_generator import ready

pytestmark = pytest.mark.e2e

PARALLEL = 4
GROUP = "llmops-inference-parallel"


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
            # A group of its own: joining and leaving must not rebalance the session pipeline's inference.
            "LLMOPS_INFERENCE_GROUP_ID": GROUP,
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


def _inference_span(env: Envelope) -> tuple[datetime, datetime]:
    record = next(t for t in env.trail if t.stage == "inference")
    return record.started_at, record.started_at + timedelta(milliseconds=record.duration_ms)


def _most_at_once(finals: list[Envelope]) -> int:
    """The most requests whose inference ran at the same moment (from the trail)."""
    spans = [_inference_span(f) for f in finals]
    return max(sum(start <= s < end for start, end in spans) for s, _ in spans)


async def _committed(core: CoreSettings, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=core.kafka.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(GROUP)
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(core.topics.checked, partition))
    return found.offset if found is not None else -1


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
        assert 1 < _most_at_once(finals) <= PARALLEL

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

    async def test_a_request_joins_the_ones_generating(self, service: ParallelService) -> None:
        """A short request sent while three long ones generate starts at once and is answered first; the
        committed offset of their partition stays at the lowest request still generating."""
        consumer = await tail_consumer(service.core, service.core.topics.generated)
        long_ones = _requests(3, max_tokens=120)
        short = _requests(1, max_tokens=2)[0]
        producer = AIOKafkaProducer(bootstrap_servers=service.core.kafka.bootstrap)
        await producer.start()
        try:
            sent = []
            for env in long_ones:
                meta = await producer.send_and_wait(
                    service.core.topics.checked, env.to_bytes(), key=env.conversation_id.encode(), partition=0
                )
                sent.append(meta.offset)
            await _first_chunk(consumer, long_ones[0].request_id)  # the long ones are generating
            await producer.send_and_wait(
                service.core.topics.checked, short.to_bytes(), key=short.conversation_id.encode(), partition=0
            )
            [short_final] = [m for m in await _collect(consumer, {short.request_id}) if m.kind != "chunk"]
            committed_while_running = await _committed(service.core, 0)
            rest = await _collect(consumer, {e.request_id for e in long_ones}, timeout=300)
        finally:
            await producer.stop()
            await consumer.stop()
        finals = [m for m in rest if m.kind != "chunk"]
        assert sorted(m.request_id for m in finals) == sorted(e.request_id for e in long_ones)
        assert short_final.completion is not None
        assert all(_inference_span(short_final)[1] < _inference_span(f)[1] for f in finals)
        assert committed_while_running <= min(sent), "an offset was committed past a request still generating"
        end = time.monotonic() + 30
        while await _committed(service.core, 0) < max(sent) + 2:  # all four done: committed past the short one
            assert time.monotonic() < end, "the offsets were not committed after the answers"
            await asyncio.sleep(0.5)

    async def test_one_conversation_answers_in_order(self, service: ParallelService) -> None:
        """Two turns of one conversation sent back to back: the second, short, is answered after the first."""
        consumer = await tail_consumer(service.core, service.core.topics.generated)
        first, second = _requests(2, max_tokens=60)
        second.conversation_id = first.conversation_id
        second.request.params.max_tokens = 2  # type: ignore[union-attr]
        try:
            await _send_all(service.core, [first, second])
            seen = await _collect(consumer, {first.request_id, second.request_id}, timeout=180)
        finally:
            await consumer.stop()
        finals = [m.request_id for m in seen if m.kind != "chunk"]
        assert finals == [first.request_id, second.request_id]
