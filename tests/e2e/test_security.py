"""Issue 14 through the real broker: a reply topic the tenant may not use is refused, and the refusal never lands there."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts.envelope import Envelope
from shared.stack.embedded import free_port
from shared.stack.processes import http_status, spawn, stop_process
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, make_envelope, tail_consumer

pytestmark = pytest.mark.e2e


async def _drain(consumer: AIOKafkaConsumer, seconds: float) -> list[Envelope]:
    found: list[Envelope] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        found += [Envelope.from_bytes(r.value) for records in batches.values() for r in records if r.value]
    return found


class TestReplyTopicPolicy:
    async def test_forbidden_reply_topic_through_the_broker(self, kafka: str, models_dir: Path, tmp_path: Path) -> None:
        """Tenant acme naming globex's reply topic: refused on the default topic; globex's topic gets nothing."""
        core = core_settings(kafka, prefix="sec.")
        own, forbidden = core.topics.name("responses.acme"), core.topics.name("responses.globex")
        await ensure_topics(core.kafka, [*core.topics.all(), own, forbidden])
        tenants = tmp_path / "tenants.yaml"
        tenants.write_text(f'default_reply_topics: ["{core.topics.prefix}responses.{{tenant}}"]\n')
        port = free_port()
        env = dict(os.environ) | {
            "LLMOPS_KAFKA_BOOTSTRAP": kafka,
            "LLMOPS_TOPIC_PREFIX": core.topics.prefix,
            "LLMOPS_PREPROCESS_HEALTH_PORT": str(port),
            "LLMOPS_PREPROCESS_GROUP_ID": "sec-reply-test",
            "LLMOPS_PREPROCESS_TENANTS_PATH": str(tenants),
            "LLMOPS_LOG_FORMAT": "json",
        }
        log_path = tmp_path / "preprocess.log"
        proc = spawn([sys.executable, "-m", "services.preprocess"], env=env, log_path=log_path)
        consumers = {
            t: await tail_consumer(core, t) for t in (core.topics.responses, forbidden, core.topics.preprocessed)
        }
        producer = AIOKafkaProducer(bootstrap_servers=kafka)
        await producer.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 180
            while await http_status("127.0.0.1", port, "/readyz") != 200:
                assert proc.poll() is None, log_path.read_text()[-2000:]
                assert loop.time() < deadline, "preprocess not ready"
                await asyncio.sleep(0.5)
            bad = make_envelope(tenant="acme", reply_to=forbidden, conversation_id="sec-1")
            good = make_envelope(tenant="acme", reply_to=own, conversation_id="sec-2")
            for request in (bad, good):
                await producer.send_and_wait(core.topics.requests, request.to_bytes(), key=b"sec")
            answers = await _drain(consumers[core.topics.responses], 10)
            leaked = await _drain(consumers[forbidden], 1)
            prepared = await _drain(consumers[core.topics.preprocessed], 1)
        finally:
            await producer.stop()
            for consumer in consumers.values():
                await consumer.stop()
            stop_process(proc, timeout=30)
        assert [(a.request_id, a.error.code if a.error else None) for a in answers] == [
            (bad.request_id, "reply_topic_not_allowed")
        ]
        assert leaked == []
        assert [p.request_id for p in prepared] == [good.request_id]
        log = log_path.read_text()
        assert "security.reply_topic_refused" in log
        assert forbidden in log
