import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from shared.client import LlmopsClient, PipelineErrorAnswer
from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings
from tests.conftest import tail_consumer

pytestmark = pytest.mark.e2e

STAGES = ["preprocess", "grounding", "safety", "inference", "postprocess"]


async def _envelope_of(consumer: AIOKafkaConsumer, request_id: str) -> Envelope:
    """The first envelope of ``request_id`` the consumer reads."""
    async for record in consumer:
        env = Envelope.from_bytes(record.value)
        if env.request_id == request_id:
            return env
    raise AssertionError(request_id)  # pragma: no cover - the consumer stopped


class TestPipeline:
    async def test_capital_of_france_and_memory(self, pipeline: CoreSettings) -> None:
        """Paris comes back through all five stages; the second turn sees the first in memory."""
        conversation = uuid.uuid4().hex
        async with LlmopsClient(pipeline) as client:
            first = await client.ask("What is the capital of France?", conversation_id=conversation, max_tokens=32)
            assert first.response is not None
            assert "Paris" in first.response.text
            assert [t.stage for t in first.trail] == STAGES
            assert all(t.outcome == "ok" for t in first.trail)
            assert first.prepared is not None
            assert first.completion is not None
            assert first.completion.model == "qwen2.5-coder-0.5b-instruct"

            second = await client.ask("What did I just ask you about?", conversation_id=conversation, max_tokens=32)
            assert second.grounding is not None
            assert [t.request_id for t in second.grounding.memory] == [first.request_id]
            assert second.grounding.memory[0].user == "What is the capital of France?"
            assert second.grounding.memory[0].assistant == first.response.text
            assert second.grounding.messages == []  # the assembled prompt is not the client's to see

    async def test_blocked_request_gets_refusal_without_inference(self, pipeline: CoreSettings) -> None:
        """A payment card number is refused by safety and never reaches the model."""
        async with LlmopsClient(pipeline) as client:
            answer = await client.ask("Store my card 4111 1111 1111 1111 please")
        assert answer.response is not None
        assert answer.response.refused
        assert answer.safety is not None
        assert answer.safety.category == "pii.credit_card"
        assert [t.stage for t in answer.trail] == ["preprocess", "grounding", "safety", "postprocess"]
        assert answer.completion is None

    async def test_email_is_redacted_before_the_model(self, pipeline: CoreSettings) -> None:
        """The model gets the redacted prompt (read on the internal checked topic); the client gets the verdict."""
        checked = await tail_consumer(pipeline, pipeline.topics.checked)
        try:
            async with LlmopsClient(pipeline) as client:
                answer = await client.ask("My email is jo@example.com. Reply with just OK.", max_tokens=8)
            to_model = await asyncio.wait_for(_envelope_of(checked, answer.request_id), timeout=30)
        finally:
            await checked.stop()
        assert answer.safety is not None
        assert answer.safety.verdict == "redact"
        assert answer.safety.messages is None  # the redacted prompt stays on the internal topics
        assert answer.response is not None
        assert to_model.safety is not None
        assert to_model.safety.messages is not None
        assert "<EMAIL_1>" in to_model.safety.messages[-1].content
        assert "jo@example.com" not in to_model.safety.messages[-1].content

    async def test_over_budget_gets_clear_error_and_dlq_record(self, pipeline: CoreSettings) -> None:
        """A prompt over the context budget is answered with prompt_too_long and dead-lettered."""
        dlq = await tail_consumer(pipeline, pipeline.topics.dlq)
        try:
            async with LlmopsClient(pipeline) as client:
                with pytest.raises(PipelineErrorAnswer) as err:
                    await client.ask("lorem ipsum dolor " * 2000)
            assert err.value.code == "prompt_too_long"
            request_id = err.value.envelope.request_id
            records = await asyncio.wait_for(_drain_until(dlq, request_id), timeout=10)
            assert dict(records.headers)["llmops-stage"] == b"preprocess"
        finally:
            await dlq.stop()

    async def test_concurrent_requests_each_get_one_answer(self, pipeline: CoreSettings) -> None:
        """Several requests in flight at once are matched to their own answers."""
        async with LlmopsClient(pipeline) as client:
            questions = [f"What is {i} plus {i}? Answer with the number only." for i in range(1, 5)]
            answers = await asyncio.gather(*(client.ask(q, max_tokens=8, temperature=0.0) for q in questions))
        assert len({a.request_id for a in answers}) == 4
        for i, answer in enumerate(answers, start=1):
            assert answer.require_request().messages[0].content == questions[i - 1]
            assert answer.response is not None


async def _drain_until(consumer: AIOKafkaConsumer, request_id: str) -> object:
    async for record in consumer:
        if dict(record.headers).get("request_id") == request_id.encode():
            return record
    raise AssertionError("unreachable")


class TestStreamingEndToEnd:
    async def test_streamed_answer_arrives_in_checked_pieces_then_the_final(self, pipeline: CoreSettings) -> None:
        """A streaming request through all five services: several chunks in seq order, then one final answer."""
        async with LlmopsClient(pipeline) as client:
            parts = [
                part
                async for part in client.stream(
                    "Write three short sentences about the sea.", max_tokens=48, temperature=0.0, timeout=120
                )
            ]
        chunks, final = parts[:-1], parts[-1]
        assert final.kind == "final"
        assert final.error is None
        assert len(chunks) >= 2
        assert [c.chunk.seq for c in chunks if c.chunk] == list(range(len(chunks)))
        streamed = "".join(c.chunk.text for c in chunks if c.chunk)
        assert final.response is not None
        # Chunks are checked, not polished: the final text is the same words, tidied.
        assert streamed.split()[:3] == final.response.text.split()[:3]
