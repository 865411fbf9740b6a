"""Streaming rails on the real broker: the postprocess service as a process, chunks produced onto its input."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts.envelope import ChatMessage, Chunk, Completion, Envelope, Grounding, Prepared, Request
from shared.guards.policy import PolicySet
from shared.runtime.runner import envelope_headers
from shared.runtime.settings import CoreSettings
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, tail_consumer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
async def postprocess(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CoreSettings]:
    """One real postprocess process on its own topics; its policy blocks API keys and AWS key ids (and redacts PII as packaged)."""
    core = core_settings(kafka, prefix=f"stream{uuid.uuid4().hex[:8]}.")
    topics = core.topics
    await ensure_topics(core.kafka, topics.all())  # the broker creates none on its own
    policy = PolicySet.load().model_dump(mode="json")
    # The output section of the one guard policy file (the safety stage's format).
    output = policy["default"]["output"]["checks"]["secrets"]
    output["actions"] = {**output.get("actions", {}), "API_KEY": "block", "AWS_ACCESS_KEY": "block"}
    folder = tmp_path_factory.mktemp("postprocess")
    policy_path = folder / "policy.json"  # JSON is YAML
    policy_path.write_text(json.dumps(policy))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LLMOPS_KAFKA_BOOTSTRAP": kafka,
        "LLMOPS_TOPIC_PREFIX": topics.prefix,
        "LLMOPS_POSTPROCESS_POLICY_PATH": str(policy_path),
        "LLMOPS_LOG_FORMAT": "json",
    }
    with (folder / "postprocess.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped below
            [sys.executable, "-m", "services.postprocess"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield core
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def generated_pieces(texts: list[str], *, stream_id: str) -> tuple[list[Envelope], Envelope]:
    """What inference sends for a streamed answer: chunk envelopes, then the envelope with the whole completion."""
    user = "Tell me about the setup."
    final = Envelope(
        conversation_id=stream_id, request=Request(messages=[ChatMessage(role="user", content=user)], stream=True)
    )
    final.prepared = Prepared(
        messages=[ChatMessage(role="user", content=user)], text=user, model="m", token_count=5, token_budget=9
    )
    final.completion = Completion(text="".join(texts), model="m", tokens_in=5, tokens_out=len(texts))
    final.grounding = Grounding(
        template_id="default", template_version=3, messages=[ChatMessage(role="user", content=user)], prompt=user
    )
    chunks = [
        Envelope(
            request_id=final.request_id,
            conversation_id=final.conversation_id,
            tenant=final.tenant,
            deadline=final.deadline,
            kind="chunk",
            chunk=Chunk(seq=seq, text=text),
            # As inference sends it: the first piece carries the prompt the output checks compare against.
            prepared=final.prepared if seq == 0 else None,
            grounding=final.grounding if seq == 0 else None,
        )
        for seq, text in enumerate(texts)
    ]
    return chunks, final


async def produce(core: CoreSettings, envelopes: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap)
    await producer.start()
    try:
        for env in envelopes:
            headers = [(k, v.encode()) for k, v in envelope_headers(env).items()]
            await producer.send_and_wait(
                core.topics.generated, env.to_bytes(), key=env.conversation_id.encode(), headers=headers
            )
    finally:
        await producer.stop()


async def replies_until_final(consumer: AIOKafkaConsumer, request_id: str) -> list[Envelope]:
    out: list[Envelope] = []
    async for record in consumer:
        env = Envelope.from_bytes(record.value)
        if env.request_id == request_id:
            out.append(env)
            if env.kind == "final":
                return out
    return out


class TestStreamingThroughTheBroker:
    async def test_pieces_are_checked_in_order_and_end_in_the_final(self, postprocess: CoreSettings) -> None:
        """PII split across chunks is redacted mid-stream; chunks keep order and their own seq; the final has all."""
        replies = await tail_consumer(postprocess, postprocess.topics.responses)
        try:
            chunks, final = generated_pieces(
                ["The robot ", "ships today", ". Mail bob", "@evil.example", " for help.", " Thanks", " again."],
                stream_id=uuid.uuid4().hex,
            )
            await produce(postprocess, [*chunks, final])
            out = await asyncio.wait_for(replies_until_final(replies, final.request_id), timeout=90)
        finally:
            await replies.stop()
        streamed = [e for e in out if e.kind == "chunk"]
        assert [e.chunk.seq for e in streamed if e.chunk] == list(range(len(streamed)))
        assert [e.chunk.text for e in streamed if e.chunk] == [
            "The robot ships today. ",
            "Mail <EMAIL> for help. ",
            "Thanks again.",
        ]
        assert out[-1].response is not None
        assert out[-1].response.text == "The robot ships today. Mail <EMAIL> for help. Thanks again."
        assert "bob@evil.example" not in "".join(e.model_dump_json() for e in out)

    async def test_blocking_check_mid_stream_ends_it_with_a_refusal(self, postprocess: CoreSettings) -> None:
        """A key in the third sentence: two clean chunks, a refused marker, nothing after; the final refuses too."""
        replies = await tail_consumer(postprocess, postprocess.topics.responses)
        try:
            chunks, final = generated_pieces(
                [
                    "Here is ",
                    "the setup. ",
                    "Install it first. ",
                    "Use key AKIA",
                    "IOSFODNN7EXAMPLE",
                    " now. ",
                    "Then run it. ",
                ],
                stream_id=uuid.uuid4().hex,
            )
            await produce(postprocess, [*chunks, final])
            out = await asyncio.wait_for(replies_until_final(replies, final.request_id), timeout=90)
        finally:
            await replies.stop()
        assert [e.kind for e in out] == ["chunk", "chunk", "chunk", "final"]
        assert [e.chunk.text for e in out[:2] if e.chunk] == ["Here is the setup. ", "Install it first. "]
        marker = out[2]
        assert marker.response is not None
        assert marker.response.refused
        assert out[-1].response is not None
        assert out[-1].response.refused
        assert out[-1].response.text == marker.response.text
        assert all("AKIA" not in e.model_dump_json() for e in out)
        assert "Then run it" not in "".join(e.chunk.text for e in out if e.chunk)
