from faststream.kafka import TestKafkaBroker

from services.inference.app import create_service
from services.inference.settings import InferenceSettings
from shared.messaging.envelope import Envelope
from shared.messaging.settings import CoreSettings
from tests.conftest import capture
from tests.services.inference.test_generator import ready


class TestInferenceService:
    async def test_checked_to_generated(self, models_dir: object) -> None:
        """A checked request is generated with the small model and published for postprocess."""
        settings = InferenceSettings(core=CoreSettings(default_model="gemma-3-270m"), n_ctx=512)
        service = create_service(settings)
        topics = settings.core.topics
        out = capture(service.broker, topics.generated, topics.responses)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(ready("Hi", "gemma-3-270m", max_tokens=3).to_bytes(), topics.checked)
        [raw] = out[topics.generated]
        result = Envelope.from_bytes(raw)
        assert result.completion is not None
        assert result.completion.tokens_out >= 1
        assert result.trail[-1].stage == "inference"
        assert out[topics.responses] == []
