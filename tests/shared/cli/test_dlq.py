"""`llmops dlq`: records on the real broker are listed, shown and replayed to their source topic."""

from __future__ import annotations

import argparse
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from shared.cli.dlq import read_dlq, replay, run
from shared.runtime.settings import CoreSettings
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, tail_consumer


@pytest.fixture
async def core(kafka: str) -> CoreSettings:
    core = core_settings(kafka, prefix=f"dlq{uuid.uuid4().hex[:6]}.")
    await ensure_topics(core.kafka, core.topics.all())
    return core


async def _dead_letter(core: CoreSettings, value: bytes, request_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap)
    await producer.start()
    headers = [
        ("llmops-stage", b"preprocess"),
        ("llmops-error-code", b"poison"),
        ("llmops-error", b"not a JSON envelope"),
        ("llmops-source-topic", core.topics.requests.encode()),
        ("llmops-source-partition", b"0"),
        ("llmops-source-offset", b"7"),
        ("request_id", request_id.encode()),
    ]
    await producer.send_and_wait(core.topics.dlq, value, key=b"k", headers=headers)
    await producer.stop()


class TestDlq:
    async def test_list_reads_every_record_with_its_headers(self, core: CoreSettings) -> None:
        """Records come back with stage, code, source and request id."""
        await _dead_letter(core, b"\xff garbage", "r-1")
        await _dead_letter(core, b"{}", "r-2")
        records = await read_dlq(core)
        # Same key, same partition: the order is the order they were dead-lettered in.
        assert [r.headers["request_id"] for r in records] == ["r-1", "r-2"]
        summary = records[0].summary()
        assert summary["stage"] == "preprocess"
        assert summary["code"] == "poison"
        assert str(summary["source"]).startswith(core.topics.requests)

    async def test_replay_sends_fixed_bytes_to_the_source_topic(self, core: CoreSettings) -> None:
        """Replay publishes to the source topic, marked with where it came from."""
        await _dead_letter(core, b"broken", "r-3")
        (record,) = await read_dlq(core)
        tail = await tail_consumer(core, core.topics.requests)
        try:
            target = await replay(core, record, value=b'{"fixed": true}')
            msg = await tail.getone()
        finally:
            await tail.stop()
        assert target == core.topics.requests
        assert msg.value == b'{"fixed": true}'
        headers = dict(msg.headers)
        assert headers["llmops-replayed-from"] == f"{core.topics.dlq}:{record.ref}".encode()
        assert headers["request_id"] == b"r-3"

    async def test_list_command_prints_a_count(self, core: CoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """The list action prints one line per record and a total."""
        await _dead_letter(core, b"x", "r-4")
        args = argparse.Namespace(action="list", ref=None, json=False, stage=None, file=None, topic=None)
        assert await run(core, args) == 0
        out = capsys.readouterr().out
        assert "r-4" in out
        assert "1 record(s)" in out
