"""Safety service wiring: ``llmops.grounded`` → ``llmops.checked``; blocked requests skip to ``llmops.generated``."""

from __future__ import annotations

import asyncio

from services.safety.checker import SafetyChecker
from services.safety.policy import SafetyPolicy
from services.safety.settings import SafetySettings
from shared.components.embedder import Embedder
from shared.components.guards import GuardResources
from shared.messaging.envelope import Envelope
from shared.messaging.service import ProcessFn, StageService

__all__ = ["create_service"]


def create_service(settings: SafetySettings | None = None) -> StageService:
    """Build the service; the guard is built in its start-up."""
    settings = settings or SafetySettings()
    topics = settings.core.topics
    service = StageService("safety", settings, input_topic=topics.grounded)

    async def warm_up() -> ProcessFn:
        resources = GuardResources(Embedder(threads=settings.embed_threads))
        checker = SafetyChecker(SafetyPolicy.load(settings.policy_path), resources)
        await asyncio.to_thread(checker.warm_up)

        async def process(env: Envelope) -> Envelope:
            return checker.process(env)

        return process

    def route(env: Envelope) -> str:
        # A blocked request goes straight to postprocess, which answers with the refusal.
        blocked = env.safety is not None and env.safety.verdict == "block"
        return topics.generated if blocked else topics.checked

    service.bind(warm_up=warm_up, route=route)
    return service
