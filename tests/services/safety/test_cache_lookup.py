from datetime import UTC, datetime, timedelta

import pytest

from services.safety.cache_lookup import CacheLookup
from shared.cache import CacheEntry, CacheSettings
from shared.contracts.envelope import Document, Envelope
from shared.models.registry import ModelRegistry
from tests.shared.cache.helpers import checked, finished, unit


@pytest.fixture
def lookup() -> CacheLookup:
    return CacheLookup(
        CacheSettings(tenants={"acme": {"enabled": True}, "beta": {"enabled": True}}), ModelRegistry.load()
    )  # type: ignore[dict-item]


def remember(lookup: CacheLookup, env: Envelope) -> CacheEntry:
    """What postprocess would offer after answering ``env`` (looked up first: that sets its key)."""
    miss = lookup.process(env)
    assert miss.cache is not None
    assert miss.cache.hit is None
    entry = CacheEntry.from_answer(finished(miss, key=miss.cache.key))
    assert lookup.offer(entry)
    return entry


class TestCacheLookup:
    def test_miss_then_hit_names_the_original_request(self, lookup: CacheLookup) -> None:
        """The first request misses (and gets its key); a paraphrase afterwards hits with the first's id."""
        first = checked("What is the capital of France?", vector=unit(1))
        entry = remember(lookup, first)
        again = lookup.process(checked("What's the capital of France?", vector=unit(7, near=unit(1), noise=0.05)))
        assert again.cache is not None
        assert again.cache.hit is not None
        assert again.cache.hit.request_id == first.request_id == entry.request_id
        assert again.cache.hit.text == "Paris."
        assert (again.cache.hit.tokens_in, again.cache.hit.tokens_out) == (9, 3)

    def test_tenants_without_the_cache_are_untouched(self, lookup: CacheLookup) -> None:
        """No cache section when the tenant has not switched it on, and its offers are ignored."""
        env = checked(tenant="gamma")
        assert lookup.process(env).cache is None
        assert not lookup.offer(CacheEntry.from_answer(finished(env)))

    def test_no_cross_tenant_hit(self, lookup: CacheLookup) -> None:
        """The same prompt from another tenant (with the cache on) misses."""
        remember(lookup, checked(tenant="acme"))
        other = lookup.process(checked(tenant="beta"))
        assert other.cache is not None
        assert other.cache.hit is None

    @pytest.mark.parametrize(
        "changed",
        [
            {"model": "qwen2.5-coder-0.5b-instruct"},
            {"template_version": 2},
            {"policy_version": 2},
            {"documents": [Document(id="d1", source="s", score=0.9, text="New knowledge.")]},
        ],
    )
    def test_invalidated_by_model_template_policy_and_knowledge(
        self, lookup: CacheLookup, changed: dict[str, object]
    ) -> None:
        """A change of model, template, safety policy or grounding knowledge makes the old answer unreachable."""
        remember(lookup, checked())
        after = lookup.process(checked(**changed))  # type: ignore[arg-type]
        assert after.cache is not None
        assert after.cache.hit is None

    def test_invalidated_by_new_weights_under_the_same_name(self, lookup: CacheLookup) -> None:
        """A registry entry with a new sha256 (a re-trained model) gets a new key."""
        remember(lookup, checked())
        entry = lookup.registry.models["gemma-3-270m"]
        lookup.registry.models["gemma-3-270m"] = entry.model_copy(update={"sha256": "0" * 64})
        after = lookup.process(checked())
        assert after.cache is not None
        assert after.cache.hit is None

    def test_expired_entries_miss(self, lookup: CacheLookup) -> None:
        """Past the TTL the entry is not given."""
        remember(lookup, checked())
        later = datetime.now(UTC) + timedelta(seconds=lookup.settings.ttl_s + 1)
        after = lookup.process(checked(), now=later)
        assert after.cache is not None
        assert after.cache.hit is None

    def test_redacted_and_opted_out_requests_are_not_looked_up(self, lookup: CacheLookup) -> None:
        """A request safety redacted, or one asking for no cache, goes to the model."""
        remember(lookup, checked())
        assert lookup.process(checked(verdict="redact")).cache is None
        assert lookup.process(checked(metadata={"cache": "off"})).cache is None
