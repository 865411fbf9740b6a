"""Grounding service wiring: ``llmops.preprocessed`` → ``llmops.grounded``; memory fed from ``llmops.turns``."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaMessage
from pydantic import ValidationError

from services.grounding.grounder import Grounder
from services.grounding.memory import ConversationMemory
from services.grounding.settings import GroundingSettings
from services.grounding.templates import TemplateStore
from shared.messaging.broker import consumer_options
from shared.messaging.envelope import Envelope, Turn
from shared.messaging.errors import PoisonMessageError
from shared.messaging.service import ProcessFn, StageService, raw_body
from shared.messaging.stage import ReceivedRecord

__all__ = ["create_service"]


def create_service(settings: GroundingSettings | None = None) -> StageService:
    """Build the service; every replica reads all of the turns topic (no group) to hold all memory."""
    settings = settings or GroundingSettings()
    topics = settings.core.topics
    service = StageService("grounding", settings, input_topic=topics.preprocessed)
    memory = ConversationMemory(settings.memory_turns, settings.memory_conversations)

    async def warm_up() -> ProcessFn:
        grounder = Grounder(
            memory, TemplateStore.load(settings.templates_dir), default_template=settings.default_template
        )

        async def process(env: Envelope) -> Envelope:
            return grounder.process(env)

        return process

    service.bind(warm_up=warm_up, route=lambda _env: topics.grounded)

    @service.broker.subscriber(
        topics.turns,
        group_id=None,
        ack_policy=AckPolicy.ACK_FIRST,
        decoder=raw_body,
        **consumer_options(settings.core.kafka),
    )
    async def on_turn(body: bytes, message: KafkaMessage) -> None:
        try:
            memory.add(Turn.model_validate_json(body))
        except (ValidationError, ValueError) as exc:
            record = ReceivedRecord.from_consumer_record(message.raw_message)
            await service.runner.dead_letter(body, record, PoisonMessageError(f"invalid turn: {exc}"))

    return service
