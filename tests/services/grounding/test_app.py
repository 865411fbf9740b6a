from faststream.kafka import TestKafkaBroker

from services.grounding.app import create_service
from services.grounding.settings import GroundingSettings
from shared.messaging.envelope import ChatMessage, Envelope, Prepared, Turn
from tests.conftest import capture, make_envelope


class TestGroundingService:
    async def test_turns_feed_memory_of_the_next_request(self) -> None:
        """A turn on the turns topic shows up in the next request of that conversation."""
        service = create_service(GroundingSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.grounded, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            turn = Turn(request_id="r0", conversation_id="c1", tenant="default", user="Hi", assistant="Hello!")
            await broker.publish(turn.model_dump_json().encode(), topics.turns, key=b"c1")
            await broker.publish(b"not a turn", topics.turns)
            env = make_envelope("And now?", conversation_id="c1")
            env.prepared = Prepared(
                messages=[ChatMessage(role="user", content="And now?")],
                text="And now?",
                model="m",
                token_count=3,
                token_budget=9,
            )
            await broker.publish(env.to_bytes(), topics.preprocessed, key=b"c1")
        [raw] = out[topics.grounded]
        grounding = Envelope.from_bytes(raw).grounding
        assert grounding is not None
        assert [m.content for m in grounding.messages[1:]] == ["Hi", "Hello!", "And now?"]
        assert out[topics.dlq] == [b"not a turn"]

    async def test_missing_prepared_section_is_an_error_answer(self) -> None:
        """A message that skipped preprocess is answered with an error, not crashed on."""
        service = create_service(GroundingSettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.grounded, topics.responses)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(make_envelope().to_bytes(), topics.preprocessed)
        assert out[topics.grounded] == []
        error = Envelope.from_bytes(out[topics.responses][0]).error
        assert error is not None
        assert error.code == "invalid_message"
