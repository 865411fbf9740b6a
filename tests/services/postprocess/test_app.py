from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from faststream.kafka import TestKafkaBroker

from services.postprocess.app import create_service
from services.postprocess.settings import PostprocessSettings
from shared.cache import CacheEntry
from shared.contracts.envelope import CacheHit, CacheInfo, ChatMessage, Chunk, Envelope, Grounding, Request
from shared.contracts.turn import Turn
from shared.models.usage import UsageRecord
from tests.conftest import capture
from tests.services.postprocess.test_finisher import generated
from tests.shared.cache.helpers import checked

PROMPT = Grounding(
    template_id="t", template_version=1, messages=[ChatMessage(role="system", content="Be brief.")], prompt="Be brief."
)


class TestPostprocessService:
    async def test_answers_on_reply_topic_and_publishes_turn(self) -> None:
        """The final answer goes to the request's reply topic; the turn goes to the turns topic."""
        service = create_service(PostprocessSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.responses, "tenant.replies", topics.turns)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(generated("Paris.").to_bytes(), topics.generated)
            custom = generated("Rome.")
            custom.reply_to = "tenant.replies"
            await broker.publish(custom.to_bytes(), topics.generated)
        [default_answer] = [Envelope.from_bytes(r) for r in out[topics.responses]]
        [custom_answer] = [Envelope.from_bytes(r) for r in out["tenant.replies"]]
        assert default_answer.response is not None
        assert default_answer.response.text == "Paris."
        assert [t.stage for t in default_answer.trail] == ["postprocess"]
        assert custom_answer.response is not None
        assert custom_answer.response.text == "Rome."
        turns = [Turn.model_validate_json(r) for r in out[topics.turns]]
        assert [t.assistant for t in turns] == ["Paris.", "Rome."]

    async def test_marker_only_answer_is_an_error_answer_recorded_in_the_trail(self) -> None:
        """A bare [1] reaches the client as an empty_answer error, with its trail record; no turn, no DLQ."""
        service = create_service(PostprocessSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.responses, topics.turns, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(generated("[1]").to_bytes(), topics.generated)
        [answer] = [Envelope.from_bytes(r) for r in out[topics.responses]]
        assert answer.response is None
        assert answer.error is not None
        assert (answer.error.code, answer.error.stage, answer.error.retriable) == ("empty_answer", "postprocess", True)
        assert [(t.stage, t.outcome) for t in answer.trail] == [("postprocess", "empty_answer")]
        assert out[topics.turns] == []
        assert out[topics.dlq] == []

    async def test_stream_chunks_then_final(self) -> None:
        """Streamed pieces come out checked, at sentence boundaries, in order, and the final answer last."""
        service = create_service(PostprocessSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.responses)
        await service.warm_up()
        final = generated("Paris is big. Mail x@evil.example now.")
        final.request = Request(messages=final.require_request().messages, stream=True)
        pieces = ["Paris ", "is big. Mail x@", "evil.example", " now."]
        async with TestKafkaBroker(service.broker) as broker:
            for seq, text in enumerate(pieces):
                chunk = Envelope(
                    request_id=final.request_id,
                    conversation_id=final.conversation_id,
                    kind="chunk",
                    chunk=Chunk(seq=seq, text=text),
                    grounding=PROMPT if seq == 0 else None,  # inference's first piece carries the prompt
                )
                await broker.publish(chunk.to_bytes(), topics.generated)
            await broker.publish(final.to_bytes(), topics.generated)
        answers = [Envelope.from_bytes(r) for r in out[topics.responses]]
        assert [a.kind for a in answers] == ["chunk", "chunk", "final"]
        assert [(a.chunk.seq, a.chunk.text) for a in answers if a.chunk] == [
            (0, "Paris is big. "),
            (1, "Mail <EMAIL> now."),
        ]
        assert answers[-1].response is not None
        assert answers[-1].response.text == "Paris is big. Mail <EMAIL> now."

    async def test_usage_for_every_answer_and_clean_answers_offered_to_the_cache(self) -> None:
        """Each answer writes a usage record; a looked-up, clean, complete answer is offered on the cache topic."""
        service = create_service(PostprocessSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.responses, topics.usage, topics.cache)
        await service.warm_up()
        miss = checked("What is the capital of France?")
        miss.cache = CacheInfo(key="k1")
        miss.completion = generated("Paris.").completion
        truncated = miss.model_copy(
            update={"request_id": "cut", "completion": generated("Paris is", finish_reason="length").completion}
        )
        uncached_tenant = checked("Hello?")
        uncached_tenant.completion = generated("Hi.").completion
        hit = checked("What's France's capital?")
        hit.cache = CacheInfo(
            key="k1",
            hit=CacheHit(
                request_id=miss.request_id, similarity=0.97, text="Paris.", model="m", tokens_in=3, tokens_out=5
            ),
        )
        async with TestKafkaBroker(service.broker) as broker:
            for env in (miss, truncated, uncached_tenant, hit):
                await broker.publish(env.to_bytes(), topics.generated)
        answers = {a.request_id: a for a in (Envelope.from_bytes(r) for r in out[topics.responses])}
        assert answers[hit.request_id].response is not None
        assert answers[hit.request_id].response.cached_from == miss.request_id  # type: ignore[union-attr]
        usage = {u.request_id: u for u in (UsageRecord.model_validate_json(r) for r in out[topics.usage])}
        assert set(usage) == {miss.request_id, "cut", uncached_tenant.request_id, hit.request_id}
        assert (usage[miss.request_id].total_tokens, usage[hit.request_id].total_tokens) == (8, 0)
        assert usage[hit.request_id].cached
        assert usage[hit.request_id].saved_completion_tokens == 5
        [entry] = [CacheEntry.model_validate_json(r) for r in out[topics.cache]]
        assert (entry.request_id, entry.key, entry.text) == (miss.request_id, "k1", "Paris.")
        assert entry.embedding == miss.prepared.embedding  # type: ignore[union-attr]


class TestBillingFollowsTheAnswer:
    async def test_an_answer_that_cannot_be_sent_is_not_billed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Usage is written once the answer is acknowledged: a reply topic the broker refuses bills nothing, and
        the turn already written is taken back (issue 23)."""
        monkeypatch.setattr("shared.runtime.publishing.random.random", lambda: 0.0)
        service = create_service(PostprocessSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.responses, topics.usage, topics.turns)
        await service.warm_up()
        publish = service.runner.publisher.publish

        async def refuse_tenant_topic(message: Any, topic: str = "", **kwargs: Any) -> Any:
            if topic == "llmops.responses.gone":
                raise KafkaTimeoutError
            return await publish(message, topic, **kwargs)

        monkeypatch.setattr(service.runner.publisher, "publish", refuse_tenant_topic)
        lost = generated("Paris.")
        lost.reply_to = "llmops.responses.gone"
        sent = generated("Rome.")
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(lost.to_bytes(), topics.generated)
            await broker.publish(sent.to_bytes(), topics.generated)
        usage = [UsageRecord.model_validate_json(r) for r in out[topics.usage]]
        assert [u.request_id for u in usage] == [sent.request_id]
        errors = [a.error.code for a in map(Envelope.from_bytes, out[topics.responses]) if a.error]
        assert errors == ["publish_failed"]
        turns = [Turn.model_validate_json(r) for r in out[topics.turns]]
        assert [(t.request_id, t.retracted) for t in turns] == [
            (lost.request_id, False),
            (lost.request_id, True),
            (sent.request_id, False),
        ]
