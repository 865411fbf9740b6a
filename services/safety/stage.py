"""The safety stage: ``llmops.grounded`` → ``llmops.checked``; blocked requests skip to ``llmops.generated``.

With the semantic cache on, a request the cache can answer also skips inference (to
``llmops.generated``, marked with the hit); every replica reads ``llmops.cache`` from the
beginning (no group) to hold every cached answer, so the cache survives restarts.

Records are consumed in batches (whatever one poll returns, up to ``batch_max_records``): each
is checked on its own, their outputs are published together and committed once (one at a time,
each waiting for its ack and commit, gave 85 msg/s for about 10 ms of checks).
"""

from __future__ import annotations

import asyncio

from services.safety.cache_lookup import CacheLookup
from services.safety.checker import SafetyChecker
from services.safety.context_memo import ContextMemo
from services.safety.policy_file import SafetyPolicy
from services.safety.settings import SafetySettings
from shared.cache import CacheEntry, CacheSettings
from shared.contracts.envelope import Envelope
from shared.contracts.stage import Delivery, Output, Outputs, SideHandler, Stage, StageContext, each
from shared.contracts.topology import Role
from shared.guards import GuardResources
from shared.models.registry import ModelRegistry
from shared.text.embedder import Embedder

__all__ = ["SafetyStage", "route"]


def route(env: Envelope) -> Output:
    """A checked request goes to inference; a blocked one, or one the cache answers, straight to postprocess."""
    blocked = env.safety is not None and env.safety.verdict == "block"
    cached = env.cache is not None and env.cache.hit is not None
    return Output.of(Role.GENERATED if blocked or cached else Role.CHECKED, env)


class SafetyStage(Stage):
    """Checks each request and its retrieved context against the tenant's policy; answers from the cache.

    Example:
        >>> stage = SafetyStage(SafetySettings())
        >>> await stage.warm_up(service)
        >>> (await stage.process([grounded]))[0][0].role
        <Role.CHECKED: 'checked'>

    """

    name = "safety"

    def __init__(self, settings: SafetySettings, *, cache: CacheSettings | None = None) -> None:
        self.settings = settings
        self.delivery = Delivery("batch", settings.batch_max_records, settings.batch_timeout_ms)
        self.lookup = CacheLookup(
            (cache or CacheSettings()).with_tenant_config(settings.core),
            ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model),
        )
        self._checker: SafetyChecker | None = None

    async def warm_up(self, context: StageContext) -> None:  # noqa: ARG002 - publishes nothing of its own
        """Build the guards (Presidio, MiniLM, the injection classifier)."""
        resources = GuardResources(Embedder(threads=self.settings.embed_threads))
        checker = SafetyChecker(
            SafetyPolicy.load(self.settings.policy_path),
            resources,
            memo=ContextMemo(self.settings.context_memo_entries),
        )
        await asyncio.to_thread(checker.warm_up)
        self._checker = checker

    async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
        """Each request checked, then looked up in the cache."""
        if self._checker is None:
            msg = "safety: warm_up() was not awaited"
            raise RuntimeError(msg)
        # The checks off the event loop (heartbeats and publishing go on while the CPU works); the cache
        # lookup on it, where the cache-entry reader also writes, so the index has one thread.
        checked = await asyncio.to_thread(each, self._checker.process, batch)
        return [[route(env)] if isinstance(env, Envelope) else env for env in each(self.lookup.process, checked)]

    def side_handlers(self) -> list[SideHandler]:
        """Every cached answer, from ``llmops.cache``'s beginning."""
        return [SideHandler(Role.CACHE, CacheEntry, self.on_cache_entry, what="cache entry")]

    async def on_cache_entry(self, entry: CacheEntry) -> Outputs:
        """Offer a cached answer to the lookup index."""
        self.lookup.offer(entry)
        return []
