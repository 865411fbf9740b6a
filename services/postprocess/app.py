"""Postprocess service wiring: ``llmops.generated`` → the request's reply topic, and the turn to ``llmops.turns``."""

from __future__ import annotations

from services.postprocess.finisher import Finisher
from services.postprocess.settings import PostprocessSettings
from shared.messaging.envelope import Envelope
from shared.messaging.service import ProcessFn, StageService

__all__ = ["create_service"]


def create_service(settings: PostprocessSettings | None = None) -> StageService:
    """Build the service."""
    settings = settings or PostprocessSettings()
    topics = settings.core.topics
    service = StageService("postprocess", settings, input_topic=topics.generated)

    async def warm_up() -> ProcessFn:
        finisher = Finisher()

        async def process(env: Envelope) -> Envelope:
            out = finisher.process(env)
            turn = finisher.turn_of(out) if settings.publish_turns else None
            if turn is not None:
                # The turn is acknowledged before the answer is sent, so memory is ahead of the client's next turn.
                await service.runner.send(
                    topics.turns,
                    turn.model_dump_json().encode(),
                    key=out.conversation_id.encode(),
                    headers={"request_id": out.request_id},
                )
            return out

        return process

    service.bind(warm_up=warm_up, route=service.runner.reply_topic)
    return service
