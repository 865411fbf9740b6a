from faststream.kafka import TestKafkaBroker

from services.safety.app import create_service
from services.safety.settings import SafetySettings
from shared.messaging.envelope import ChatMessage, Envelope, Grounding
from tests.conftest import capture, make_envelope


def grounded(text: str) -> Envelope:
    env = make_envelope(text)
    env.grounding = Grounding(
        template_id="default", template_version=1, messages=[ChatMessage(role="user", content=text)], prompt=text
    )
    return env


class TestSafetyService:
    async def test_routes_allowed_to_checked_and_blocked_to_generated(self) -> None:
        """Allowed requests go on to inference; blocked ones skip straight to postprocess."""
        service = create_service(SafetySettings())
        topics = service.settings.core.topics
        out = capture(service.broker, topics.checked, topics.generated)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(grounded("Capital of France?").to_bytes(), topics.grounded)
            await broker.publish(grounded("My card is 4111 1111 1111 1111").to_bytes(), topics.grounded)
        [allowed] = [Envelope.from_bytes(r) for r in out[topics.checked]]
        [blocked] = [Envelope.from_bytes(r) for r in out[topics.generated]]
        assert allowed.safety is not None
        assert allowed.safety.verdict == "allow"
        assert blocked.safety is not None
        assert blocked.safety.verdict == "block"
        assert blocked.trail[-1].stage == "safety"
