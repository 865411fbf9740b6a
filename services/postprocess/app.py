"""Postprocess service wiring: ``llmops.generated`` → the request's reply topic, and the turn to ``llmops.turns``.

Each final answer also writes its token accounting to ``llmops.usage`` and, when the semantic
cache looked it up and it passed every check unchanged, offers itself on ``llmops.cache``: both once
the answer itself is acknowledged, so an answer that could not be sent is never billed (issue 23).

Streamed pieces (``kind="chunk"``) go through the ``StreamGate`` and come out as zero or one
checked chunk each; the message with the whole completion becomes the last chunk (what was
held back) followed by the final answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.postprocess.finisher import Finisher
from services.postprocess.output_checks import OutputChecker
from services.postprocess.settings import PostprocessSettings
from services.postprocess.stream import StreamGate
from shared.components.cache import CacheEntry, cacheable_answer
from shared.components.guards.policy import PolicySet
from shared.components.registry import ModelRegistry
from shared.components.usage import usage_record
from shared.messaging.envelope import Envelope
from shared.messaging.service import ProcessFn, StageService

__all__ = ["create_service"]


def create_service(settings: PostprocessSettings | None = None) -> StageService:
    """Build the service; the output guards are built in its start-up."""
    settings = settings or PostprocessSettings()
    topics = settings.core.topics
    service = StageService("postprocess", settings, input_topic=topics.generated)

    async def warm_up() -> ProcessFn:
        checker = OutputChecker(policy=PolicySet.load(settings.policy_path))
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

    registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
    # Billing and the cache offer run once each answer is acknowledged, never before it.
    service.bind(
        warm_up=warm_up, route=service.runner.reply_topic, after_publish=_accounting(service, settings, registry)
    )
    return service


def _accounting(
    service: StageService, settings: PostprocessSettings, registry: ModelRegistry
) -> Callable[[Envelope], Awaitable[None]]:
    """What an answer costs, written once the answer is out (``StageService.bind``'s ``after_publish``)."""
    topics = settings.core.topics

    async def account(final: Envelope) -> None:
        """Usage to ``llmops.usage`` and a cacheable answer to ``llmops.cache``, once the answer is out.

        After the answer (issue 23): an answer that could not be published is not billed. A crash between
        the two redelivers the message: the client gets its answer once, and the bill is deduplicated.
        """
        if final.kind != "final" or final.error is not None:
            return
        sends = []
        if settings.publish_usage:
            record = usage_record(final, registry)
            sends.append(
                service.runner.send(
                    topics.usage,
                    record.model_dump_json().encode(),
                    key=final.tenant.encode(),
                    headers={"request_id": final.request_id},
                )
            )
        if final.cache is not None and cacheable_answer(final):
            entry = CacheEntry.from_answer(final)
            sends.append(
                service.runner.send(
                    topics.cache,
                    entry.model_dump_json().encode(),
                    key=entry.key.encode(),
                    headers={"request_id": final.request_id},
                )
            )
        await asyncio.gather(*sends)

    return account
