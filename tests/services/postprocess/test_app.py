from faststream.kafka import TestKafkaBroker

from services.postprocess.app import create_service
from services.postprocess.settings import PostprocessSettings
from shared.messaging.envelope import Chunk, Envelope, Request, Turn
from tests.conftest import capture
from tests.services.postprocess.test_finisher import generated


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
