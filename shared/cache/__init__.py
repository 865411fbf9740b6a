"""The semantic cache: answers given again to prompts that mean the same, in the same context.

Safety looks a request up once its verdict is known (``CacheLookup`` in ``services/safety``);
postprocess offers each answer that passed its checks on ``llmops.cache``; every safety
replica reads that topic from the beginning into its in-memory ``SemanticCache``.
"""

from shared.cache.index import CacheEntry, CacheMatch, SemanticCache
from shared.cache.keys import cache_key, cacheable_answer, lookup_allowed
from shared.cache.settings import CacheRule, CacheSettings, TenantCache

__all__ = [
    "CacheEntry",
    "CacheMatch",
    "CacheRule",
    "CacheSettings",
    "SemanticCache",
    "TenantCache",
    "cache_key",
    "cacheable_answer",
    "lookup_allowed",
]
