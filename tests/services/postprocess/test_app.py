from faststream.kafka import TestKafkaBroker

from services.postprocess.app import create_service
from services.postprocess.settings import PostprocessSettings
from shared.messaging.envelope import Envelope, Turn
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
        assert custom_answer.response is not None
        assert custom_answer.response.text == "Rome."
        turns = [Turn.model_validate_json(r) for r in out[topics.turns]]
        assert [t.assistant for t in turns] == ["Paris.", "Rome."]
