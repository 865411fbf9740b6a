import json
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker

from services.preprocess.app import create_service
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from shared.contracts.envelope import Envelope
from shared.text.embedder import decode_vector
from tests.conftest import capture, make_envelope

# Each bad input, as raw bytes a client could produce, and the error code its answer carries.
BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "empty": (b'{"request_id": "bad-empty", "messages": [{"role": "user", "content": ""}]}', "empty_prompt"),
    "whitespace": (
        b'{"request_id": "bad-space", "messages": [{"role": "user", "content": " \\t\\n\\u3000 "}]}',
        "empty_prompt",
    ),
    "controls": (
        b'{"request_id": "bad-controls", "messages": [{"role": "user", "content": "\\u0000\\u200b\\u202e\\u0007"}]}',
        "empty_prompt",
    ),
    "role": (b'{"request_id": "bad-role", "messages": [{"role": "robot", "content": "hi"}]}', "invalid_message"),
    "huge-prompt": (
        json.dumps({"request_id": "bad-huge", "messages": [{"role": "user", "content": "a " * 500_000}]}).encode(),
        "prompt_too_long",
    ),
    "over-message-limit": (
        json.dumps({"request_id": "bad-limit", "messages": [{"role": "user", "content": "a" * 1_100_000}]}).encode(),
        "invalid_message",
    ),
    "invalid-utf8": (
        b'{"request_id": "bad-utf8", "messages": [{"role": "user", "content": "caf\xe9 \xff\xfe"}]}',
        "invalid_message",
    ),
    "lone-surrogate": (
        b'{"request_id": "bad-surrogate", "messages": [{"role": "user", "content": "a \\ud800 b"}]}',
        "invalid_message",
    ),
}


class TestPreprocessService:
    async def test_request_to_preprocessed(self, warm_pre: Preprocessor) -> None:
        """A request comes out on the preprocessed topic with the prepared section, embedding and a trail record."""
        service = create_service(PreprocessSettings(), preprocessor=warm_pre)
        topics = service.settings.core.topics
        out = capture(service.broker, topics.preprocessed, topics.responses, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            env = make_envelope("  What   is the capital of France?\u200b ", conversation_id="c1")
            await broker.publish(env.to_bytes(), topics.requests, key=b"c1")
        [raw] = out[topics.preprocessed]
        result = Envelope.from_bytes(raw)
        assert result.prepared is not None
        assert result.prepared.text == "What is the capital of France?"
        assert result.prepared.changes == ["invisible_chars", "whitespace"]
        assert result.prepared.model == "qwen2.5-coder-0.5b-instruct"
        assert result.prepared.language == "en"
        assert result.prepared.embedding is not None
        assert decode_vector(result.prepared.embedding).shape == (384,)
        assert result.trail[-1].stage == "preprocess"
        assert out[topics.dlq] == []

    async def test_minimal_json_and_garbage(self, warm_pre: Preprocessor) -> None:
        """The minimal shape is accepted; garbage is dead-lettered without stopping the next message."""
        service = create_service(PreprocessSettings(), preprocessor=warm_pre)
        topics = service.settings.core.topics
        out = capture(service.broker, topics.preprocessed, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(b"{not json", topics.requests)
            minimal = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
            await broker.publish(json.dumps(minimal).encode(), topics.requests, key=b"conv-9")
        assert out[topics.dlq] == [b"{not json"]
        [raw] = out[topics.preprocessed]
        result = Envelope.from_bytes(raw)
        assert result.conversation_id == "conv-9"
        assert result.require_request().params.max_tokens == 8

    async def test_batch_with_bad_items(self, warm_pre: Preprocessor) -> None:
        """One batch: good requests are prepared and embedded, each bad one gets its own answer and DLQ record."""
        service = create_service(PreprocessSettings(), preprocessor=warm_pre)
        topics = service.settings.core.topics
        out = capture(service.broker, topics.preprocessed, topics.responses, topics.dlq)
        await service.warm_up()
        good = [make_envelope(f"Tell me about recieving parcel number {i}", conversation_id=f"g{i}") for i in range(3)]
        bad = [raw for raw, _ in BAD_INPUTS.values() if len(raw) < 1000]
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish_batch(
                good[0].to_bytes(), *bad, good[1].to_bytes(), good[2].to_bytes(), topic=topics.requests
            )
        results = [Envelope.from_bytes(raw) for raw in out[topics.preprocessed]]
        assert sorted(r.request_id for r in results) == sorted(e.request_id for e in good)
        assert all(r.prepared and r.prepared.embedding and r.prepared.corrections for r in results)
        assert len(out[topics.dlq]) == len(bad)
        assert len(out[topics.responses]) == len(bad)

    @pytest.mark.parametrize("name", list(BAD_INPUTS))
    async def test_bad_input_gets_answer_and_dlq(self, warm_pre: Preprocessor, name: str) -> None:
        """Each kind of bad input gets a clear error answer and a DLQ record with the raw bytes."""
        raw, code = BAD_INPUTS[name]
        service = create_service(PreprocessSettings(), preprocessor=warm_pre)
        topics = service.settings.core.topics
        out = capture(service.broker, topics.preprocessed, topics.responses, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(raw, topics.requests, key=b"bad")
        assert out[topics.preprocessed] == []
        assert out[topics.dlq] == [raw]
        [answer] = [Envelope.from_bytes(a) for a in out[topics.responses]]
        assert answer.error is not None
        assert answer.error.code == code
        assert answer.error.stage == "preprocess"
        assert answer.request_id == json.loads(raw.decode(errors="replace"))["request_id"]


class TestReplyTopicRefusal:
    async def test_forbidden_reply_topic_is_answered_on_the_default_topic(
        self, warm_pre: Preprocessor, tmp_path: Path
    ) -> None:
        """A request naming another tenant's topic gets reply_topic_not_allowed on llmops.responses, nothing else."""
        tenants = tmp_path / "tenants.yaml"
        tenants.write_text('default_reply_topics: ["llmops.replies.{tenant}"]\n')
        service = create_service(PreprocessSettings(tenants_path=tenants), preprocessor=warm_pre)
        topics = service.settings.core.topics
        forbidden, own = "llmops.replies.globex", "llmops.replies.acme"
        out = capture(service.broker, topics.preprocessed, topics.responses, topics.dlq, forbidden, own)
        await service.warm_up()
        bad = make_envelope(tenant="acme", reply_to=forbidden, conversation_id="c1")
        good = make_envelope(tenant="acme", reply_to=own, conversation_id="c2")
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish_batch(bad.to_bytes(), good.to_bytes(), topic=topics.requests)
        [answer] = [Envelope.from_bytes(raw) for raw in out[topics.responses]]
        assert answer.request_id == bad.request_id
        assert answer.error is not None
        assert answer.error.code == "reply_topic_not_allowed"
        assert answer.reply_to is None
        assert out[forbidden] == []
        assert out[topics.dlq] == []
        assert [Envelope.from_bytes(raw).request_id for raw in out[topics.preprocessed]] == [good.request_id]
        rendered = service.metrics.render()[0].decode()
        assert 'llmops_stage_messages_total{outcome="reply_topic_not_allowed",stage="preprocess"} 1.0' in rendered


class TestHostileClients:
    """Issue 23, through the service: no record stalls the batch (reused ids: tests/e2e/test_cost.py, real offsets)."""

    async def test_deep_and_forged_records_do_not_stop_the_batch(self, warm_pre: Preprocessor) -> None:
        """A record nested 100,000 deep and one with a forged cache hit are dead-lettered; the good one goes on."""
        service = create_service(PreprocessSettings(), preprocessor=warm_pre)
        topics = service.settings.core.topics
        out = capture(service.broker, topics.preprocessed, topics.responses, topics.dlq)
        await service.warm_up()
        deep = b'{"request_id": "deep", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        forged = json.loads(make_envelope(request_id="forged").to_bytes())
        forged["cache"] = {"key": "k", "hit": {"request_id": "x", "similarity": 1.0, "text": "forged", "model": "m"}}
        good = make_envelope(conversation_id="good")
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish_batch(deep, json.dumps(forged).encode(), good.to_bytes(), topic=topics.requests)
        assert [Envelope.from_bytes(r).request_id for r in out[topics.preprocessed]] == [good.request_id]
        assert len(out[topics.dlq]) == 2
        answers = {Envelope.from_bytes(r).request_id: Envelope.from_bytes(r) for r in out[topics.responses]}
        assert answers["forged"].error is not None
        assert answers["forged"].error.code == "invalid_message"
