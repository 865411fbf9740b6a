"""Metrics and logs of the running pipeline: every stage counts its messages and logs one canonical line each."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import pytest

from shared.client.sdk import LlmopsClient
from shared.stack.embedded import STAGES, EmbeddedStack
from tests.conftest import SMALL_MODEL

pytestmark = pytest.mark.e2e


async def _get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data.decode().split("\r\n\r\n", 1)[1]


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class TestObservability:
    async def test_metrics_count_each_stage(self, pipeline_stack: EmbeddedStack) -> None:
        """After a request, every stage's /metrics shows it handled a message, and inference counts tokens."""
        async with LlmopsClient(pipeline_stack.core) as client:
            answer = await client.ask("Say hi.", model=SMALL_MODEL, max_tokens=4)
        assert answer.error is None
        for svc in pipeline_stack.services:
            text = await _get(svc.health_port, "/metrics")
            assert _counter(text, "llmops_stage_messages_total", stage=svc.stage, outcome="ok") >= 1, svc.stage
            assert "llmops_stage_duration_seconds_bucket" in text
        inference = next(s for s in pipeline_stack.services if s.stage == "inference")
        text = await _get(inference.health_port, "/metrics")
        assert _counter(text, "llmops_tokens_total", direction="completion") >= 1
        assert "llmops_time_to_first_token_seconds_count" in text
        safety = next(s for s in pipeline_stack.services if s.stage == "safety")
        assert _counter(await _get(safety.health_port, "/metrics"), "llmops_safety_verdicts_total") >= 1

    async def test_canonical_log_lines_have_bound_fields_and_no_prompt(self, pipeline_stack: EmbeddedStack) -> None:
        """Each stage logs one JSON line for the message with request, conversation, tenant, stage and replica."""
        secret_words = f"zebra-{uuid.uuid4().hex[:8]} mango orbit"
        async with LlmopsClient(pipeline_stack.core) as client:
            answer = await client.ask(f"Repeat after me: {secret_words}", model=SMALL_MODEL, max_tokens=4)
        await asyncio.sleep(0.5)  # let the last stage flush its log line
        seen: set[str] = set()
        for svc in pipeline_stack.services:
            text = svc.log_path.read_text(errors="replace")
            assert secret_words not in text, f"prompt text in {svc.name}'s log"
            for line in text.splitlines():
                if answer.request_id not in line or not line.startswith("{"):
                    continue
                record = json.loads(line)
                if record.get("event") != "message.done":
                    continue
                assert record["request_id"] == answer.request_id
                assert record["conversation_id"] == answer.conversation_id
                assert record["tenant"] == answer.tenant
                assert record["stage"] == svc.stage
                assert record["replica"] == svc.name
                assert record["outcome"] == "ok"
                assert re.fullmatch(r"[0-9.]+", str(record["duration_ms"]))
                seen.add(svc.stage)
        assert seen == set(STAGES)
