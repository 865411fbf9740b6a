from datetime import UTC, datetime, timedelta

from shared.cache import CacheEntry, CacheSettings, SemanticCache
from shared.text.embedder import encode_vector
from tests.shared.cache.helpers import unit

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def entry(
    request_id: str = "r1", *, tenant: str = "acme", key: str = "k", seed: int = 1, **fields: object
) -> CacheEntry:
    return CacheEntry(
        key=key,
        tenant=tenant,
        request_id=request_id,
        embedding=encode_vector(unit(seed)),
        text="Paris.",
        model="gemma-3-270m",
        tokens_in=9,
        tokens_out=3,
        at=fields.pop("at", NOW),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


class TestSemanticCache:
    def test_similar_prompt_hits_and_dissimilar_misses(self) -> None:
        """Above the threshold the entry comes back with its similarity; a different prompt misses."""
        cache = SemanticCache()
        assert cache.add(entry())
        near = unit(7, near=unit(1), noise=0.1)
        match = cache.lookup("acme", "k", near, threshold=0.95, ttl_s=60, now=NOW)
        assert match is not None
        assert match.entry.request_id == "r1"
        assert 0.95 <= match.similarity < 1.0
        assert cache.lookup("acme", "k", unit(2), threshold=0.95, ttl_s=60, now=NOW) is None

    def test_threshold_decides(self) -> None:
        """The same pair hits at a low threshold and misses at a high one."""
        cache = SemanticCache()
        cache.add(entry())
        near = unit(7, near=unit(1), noise=0.5)
        assert cache.lookup("acme", "k", near, threshold=0.5, ttl_s=60, now=NOW) is not None
        assert cache.lookup("acme", "k", near, threshold=0.99, ttl_s=60, now=NOW) is None

    def test_no_cross_tenant_or_cross_key_hit(self) -> None:
        """The same vector under another tenant or another exact key is a miss."""
        cache = SemanticCache()
        cache.add(entry())
        assert cache.lookup("other", "k", unit(1), threshold=0.5, ttl_s=60, now=NOW) is None
        assert cache.lookup("acme", "k2", unit(1), threshold=0.5, ttl_s=60, now=NOW) is None

    def test_entries_expire(self) -> None:
        """An entry older than the TTL is never given."""
        cache = SemanticCache()
        cache.add(entry())
        assert cache.lookup("acme", "k", unit(1), threshold=0.9, ttl_s=60, now=NOW + timedelta(seconds=59))
        assert cache.lookup("acme", "k", unit(1), threshold=0.9, ttl_s=60, now=NOW + timedelta(seconds=61)) is None

    def test_an_answer_longer_than_the_request_allows_is_skipped(self) -> None:
        """A request with a smaller max_tokens than the cached answer used gets a fresh one."""
        cache = SemanticCache()
        cache.add(entry())
        assert cache.lookup("acme", "k", unit(1), threshold=0.9, ttl_s=60, max_tokens_out=2, now=NOW) is None
        assert cache.lookup("acme", "k", unit(1), threshold=0.9, ttl_s=60, max_tokens_out=3, now=NOW)

    def test_redelivered_offer_is_held_once_and_oldest_evicted(self) -> None:
        """The same request id is stored once; past max_entries the oldest goes."""
        cache = SemanticCache(max_entries=2)
        assert cache.add(entry("r1"))
        assert not cache.add(entry("r1"))
        cache.add(entry("r2", seed=2))
        cache.add(entry("r3", seed=3))
        assert len(cache) == 2
        assert cache.lookup("acme", "k", unit(1), threshold=0.99, ttl_s=60, now=NOW) is None
        assert cache.lookup("acme", "k", unit(3), threshold=0.99, ttl_s=60, now=NOW) is not None

    def test_another_tenants_request_id_does_not_keep_an_entry_out(self) -> None:
        """Ids are the clients': one tenant's entry with an id does not stop another tenant's (issue 23)."""
        cache = SemanticCache()
        assert cache.add(entry("r1", tenant="globex"))
        assert cache.add(entry("r1", tenant="acme"))
        assert cache.lookup("acme", "k", unit(1), threshold=0.99, ttl_s=60, now=NOW) is not None


class TestCacheSettings:
    def test_tenant_overrides(self) -> None:
        """Off by default; a tenant can switch it on with its own threshold and TTL."""
        settings = CacheSettings(tenants={"acme": {"enabled": True, "threshold": 0.9, "ttl_s": 60}})  # type: ignore[dict-item]
        assert not settings.rule("other").enabled
        rule = settings.rule("acme")
        assert (rule.enabled, rule.threshold, rule.ttl_s) == (True, 0.9, 60)

    def test_from_the_environment(self, monkeypatch: object) -> None:
        """LLMOPS_CACHE_TENANTS is JSON."""
        monkeypatch.setenv("LLMOPS_CACHE_TENANTS", '{"acme": {"enabled": true}}')  # type: ignore[attr-defined]
        assert CacheSettings().rule("acme").enabled
