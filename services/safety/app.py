"""Safety service wiring: ``llmops.grounded`` → ``llmops.checked``; blocked requests skip to ``llmops.generated``.

With the semantic cache on, a request the cache can answer also skips inference (to
``llmops.generated``, marked with the hit); every replica reads ``llmops.cache`` from the
beginning (no group) to hold every cached answer, so the cache survives restarts.
"""

from __future__ import annotations

import asyncio

from services.safety.cache_lookup import CacheLookup
from services.safety.checker import SafetyChecker
from services.safety.policy import SafetyPolicy
from services.safety.settings import SafetySettings
from shared.components.cache import CacheEntry, CacheSettings
from shared.components.embedder import Embedder
from shared.components.guards import GuardResources
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import Envelope
from shared.messaging.service import ProcessFn, StageService

__all__ = ["create_service"]


def create_service(settings: SafetySettings | None = None, *, cache: CacheSettings | None = None) -> StageService:
    """Build the service; the guard is built in its start-up."""
    settings = settings or SafetySettings()
    topics = settings.core.topics
    service = StageService("safety", settings, input_topic=topics.grounded)
    lookup = CacheLookup(
        cache or CacheSettings(),
        ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model),
    )

    async def warm_up() -> ProcessFn:
        resources = GuardResources(Embedder(threads=settings.embed_threads))
        checker = SafetyChecker(SafetyPolicy.load(settings.policy_path), resources)
        await asyncio.to_thread(checker.warm_up)

        async def process(env: Envelope) -> Envelope:
            return lookup.process(checker.process(env))

        return process

    def route(env: Envelope) -> str:
        # A blocked request goes straight to postprocess, which answers with the refusal; so does a cache hit.
        blocked = env.safety is not None and env.safety.verdict == "block"
        cached = env.cache is not None and env.cache.hit is not None
        return topics.generated if blocked or cached else topics.checked

    service.bind(warm_up=warm_up, route=route)

    async def on_cache_entry(entry: CacheEntry) -> None:
        lookup.offer(entry)

    service.follow(topics.cache, CacheEntry, on_cache_entry, what="cache entry")

    return service
