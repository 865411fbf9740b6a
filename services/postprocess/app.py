"""Postprocess service wiring: ``llmops.generated`` → the request's reply topic, and the turn to ``llmops.turns``.

Streamed pieces (``kind="chunk"``) go through the ``StreamGate`` and come out as zero or one
checked chunk each; the message with the whole completion becomes the last chunk (what was
held back) followed by the final answer.
"""

from __future__ import annotations

import asyncio

from services.postprocess.finisher import Finisher
from services.postprocess.output_checks import OutputChecker
from services.postprocess.policy import OutputPolicy
from services.postprocess.settings import PostprocessSettings
from services.postprocess.stream import StreamGate
from shared.messaging.envelope import Envelope
from shared.messaging.service import ProcessFn, StageService

__all__ = ["create_service"]


def create_service(settings: PostprocessSettings | None = None) -> StageService:
    """Build the service; the output guards are built in its start-up."""
    settings = settings or PostprocessSettings()
    topics = settings.core.topics
    service = StageService("postprocess", settings, input_topic=topics.generated)

    async def warm_up() -> ProcessFn:
        checker = OutputChecker(policy=OutputPolicy.load(settings.policy_path))
        finisher = Finisher(checker)
        await asyncio.to_thread(finisher.warm_up)
        gate = StreamGate(checker, max_streams=settings.max_streams)

        async def process(env: Envelope) -> list[Envelope]:
            if env.kind == "chunk":
                return gate.on_chunk(env)
            pieces, refusal = gate.finish(env)
            finished = finisher.finish(env, stream_refusal=refusal)
            if finished.turn is not None and settings.publish_turns:
                # The turn is acknowledged before the answer is sent, so memory is ahead of the client's next turn.
                await service.runner.send(
                    topics.turns,
                    finished.turn.model_dump_json().encode(),
                    key=env.conversation_id.encode(),
                    headers={"request_id": env.request_id},
                )
            return [*pieces, finished.envelope]

        return process

    service.bind(warm_up=warm_up, route=service.runner.reply_topic)
    return service
