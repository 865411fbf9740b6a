"""The semantic cache's lookup, on safety's output side: the last point before inference.

Here the verdict is known (only requests allowed as they are may be answered from the cache)
and a hit skips inference's queue altogether: it goes straight to postprocess, which answers
with the cached text. The lookup fills only the envelope's ``cache`` section.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.cache import CacheEntry, CacheSettings, SemanticCache, cache_key, lookup_allowed
from shared.contracts.envelope import CacheHit, CacheInfo, Envelope
from shared.models.registry import ModelRegistry, UnknownModelError
from shared.text.embedder import decode_vector

__all__ = ["CacheLookup"]


class CacheLookup:
    """Marks a checked request with its cache key, and with the cached answer on a hit.

    Example:
        >>> lookup = CacheLookup(CacheSettings(enabled=True), ModelRegistry.load())
        >>> lookup.offer(entry)  # from llmops.cache
        True
        >>> lookup.process(checked).cache.hit.request_id
        'r1'

    """

    def __init__(self, settings: CacheSettings, registry: ModelRegistry, cache: SemanticCache | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.cache = cache or SemanticCache(max_entries=settings.max_entries)

    def offer(self, entry: CacheEntry) -> bool:
        """Hold an answer postprocess offered (entries of tenants without the cache are ignored)."""
        if not self.settings.rule(entry.tenant).enabled:
            return False
        return self.cache.add(entry)

    def process(self, env: Envelope, *, now: datetime | None = None) -> Envelope:
        """``env`` with its ``cache`` section when the tenant uses the cache (unchanged otherwise)."""
        rule = self.settings.rule(env.tenant)
        if not rule.enabled or not lookup_allowed(env) or env.prepared is None or env.prepared.embedding is None:
            return env
        try:
            revision = self.registry.get(env.prepared.model).revision
        except UnknownModelError:
            return env
        key = cache_key(env, model_revision=revision)
        match = self.cache.lookup(
            env.tenant,
            key,
            decode_vector(env.prepared.embedding),
            threshold=rule.threshold,
            ttl_s=rule.ttl_s,
            max_tokens_out=env.require_request().params.max_tokens,
            now=now or datetime.now(UTC),
        )
        hit = None
        if match is not None:
            entry = match.entry
            hit = CacheHit(
                request_id=entry.request_id,
                similarity=round(match.similarity, 6),
                text=entry.text,
                citations=entry.citations,
                model=entry.model,
                tokens_in=entry.tokens_in,
                tokens_out=entry.tokens_out,
            )
        return env.model_copy(update={"cache": CacheInfo(key=key, hit=hit)})
