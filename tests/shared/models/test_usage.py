from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.envelope import CacheHit, CacheInfo, Response
from shared.contracts.shadow import SHADOW_METADATA_KEY
from shared.models.registry import ModelRegistry
from shared.models.usage import UsageRecord, dedupe, parse_since, summarize, usage_record
from tests.shared.cache.helpers import checked, finished

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def record(request_id: str, tenant: str = "acme", *, model: str = "gemma-3-270m", **fields: object) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        tenant=tenant,
        model=model,
        requested_at=NOW,
        at=fields.pop("at", NOW),
        **fields,  # type: ignore[arg-type]
    )


class TestUsageRecord:
    def test_generated_answer_is_priced_from_the_registry(self) -> None:
        """Tokens from the completion, cost from the model's registry price."""
        registry = ModelRegistry.load()
        out = usage_record(finished(checked()), registry)
        price = registry.get("gemma-3-270m").price
        assert (out.prompt_tokens, out.completion_tokens, out.total_tokens) == (9, 3, 12)
        assert out.cost == pytest.approx((9 * price.prompt_per_1m + 3 * price.completion_per_1m) / 1e6)
        assert out.cost > 0
        assert not out.cached
        assert out.saved_cost == 0

    def test_cache_hit_uses_nothing_and_saves_the_original_tokens(self) -> None:
        """A cached answer costs no tokens; what the original used is recorded as saved."""
        env = checked()
        hit = CacheHit(request_id="r0", similarity=0.99, text="Paris.", model="gemma-3-270m", tokens_in=9, tokens_out=3)
        answer = env.model_copy(
            update={
                "kind": "final",
                "cache": CacheInfo(key="k", hit=hit),
                "response": Response(text="Paris.", cached=True),
            }
        )
        out = usage_record(answer, ModelRegistry.load())
        assert out.cached
        assert out.total_tokens == 0
        assert out.cost == 0
        assert (out.saved_prompt_tokens, out.saved_completion_tokens) == (9, 3)
        assert out.saved_cost > 0


class TestSummarize:
    def test_sums_equal_the_per_request_figures(self) -> None:
        """Per tenant and model, every sum is the sum of that group's records; redeliveries count once."""
        records = [
            record("a", prompt_tokens=10, completion_tokens=5, cost=0.5),
            record("b", prompt_tokens=7, completion_tokens=2, cost=0.25),
            record("b", prompt_tokens=7, completion_tokens=2, cost=0.25),  # a redelivered answer
            record("c", cached=True, saved_prompt_tokens=10, saved_completion_tokens=5, saved_cost=0.5),
            record("d", "beta", prompt_tokens=1, completion_tokens=1, cost=0.1),
        ]
        totals = {(t.tenant, t.model): t for t in summarize(records)}
        acme = totals["acme", "gemma-3-270m"]
        assert (acme.requests, acme.cached, acme.prompt_tokens, acme.completion_tokens) == (3, 1, 17, 7)
        assert acme.total_tokens == 24
        assert acme.saved_tokens == 15
        assert acme.cost == pytest.approx(0.75)
        assert acme.saved_cost == pytest.approx(0.5)
        assert sum(t.total_tokens for t in totals.values()) == sum(r.total_tokens for r in dedupe(records))

    def test_tenant_and_since_filter(self) -> None:
        """--tenant keeps one tenant, --since drops older answers."""
        records = [
            record("old", prompt_tokens=100, at=NOW - timedelta(days=2)),
            record("new", prompt_tokens=1),
            record("x", "beta", prompt_tokens=5),
        ]
        totals = summarize(records, tenant="acme", since=NOW - timedelta(days=1))
        assert [(t.tenant, t.prompt_tokens) for t in totals] == [("acme", 1)]


class TestParseSince:
    def test_ages_and_iso_times(self) -> None:
        """30m, 24h, 7d are ages; ISO times without a zone are UTC."""
        assert parse_since("30m", now=NOW) == NOW - timedelta(minutes=30)
        assert parse_since("7d", now=NOW) == NOW - timedelta(days=7)
        assert parse_since("2026-01-31T12:00") == datetime(2026, 1, 31, 12, tzinfo=UTC)

    def test_nonsense_is_refused(self) -> None:
        """A clear message for what --since does not understand."""
        with pytest.raises(ValueError, match="ISO time"):
            parse_since("yesterday")


class TestAliasInUsage:
    def test_record_names_the_alias_and_the_variant(self) -> None:
        """An answer to a request for an alias records the alias and the model that served it."""
        env = finished(checked())
        assert env.prepared is not None
        env.prepared.alias = "chat-canary"
        out = usage_record(env, ModelRegistry.load())
        assert (out.alias, out.model) == ("chat-canary", "gemma-3-270m")
        assert usage_record(finished(checked()), ModelRegistry.load()).alias is None

    def test_summarize_splits_an_alias_by_variant(self) -> None:
        """Sums are per (tenant, model, alias): a canary's variants, and the same model asked for directly, apart."""
        records = [
            record("a", model="m1", alias="chat", prompt_tokens=1),
            record("b", model="m2", alias="chat", prompt_tokens=2),
            record("c", model="m1", alias="chat", prompt_tokens=3),
            record("d", model="m1", prompt_tokens=4),
        ]
        totals = {(t.model, t.alias): (t.requests, t.prompt_tokens) for t in summarize(records)}
        assert totals == {("m1", None): (1, 4), ("m1", "chat"): (2, 4), ("m2", "chat"): (1, 2)}


class TestShadowUsage:
    def test_a_shadow_requests_record_says_so(self) -> None:
        """The answer to a shadow request writes ``traffic="shadow"``; a live one ``live``."""
        env = finished(checked())
        assert usage_record(env, ModelRegistry.load()).traffic == "live"
        env.require_request().metadata[SHADOW_METADATA_KEY] = "replay"
        out = usage_record(env, ModelRegistry.load())
        assert (out.traffic, out.shadow) == ("shadow", True)

    def test_summarize_leaves_shadow_out_unless_asked_then_apart(self) -> None:
        """By default only live records are summed; with include_shadow they get rows of their own."""
        records = [
            record("a", prompt_tokens=10),
            record("s1", prompt_tokens=100, traffic="shadow"),
            record("s2", prompt_tokens=200, traffic="shadow"),
        ]
        [live] = summarize(records)
        assert (live.traffic, live.requests, live.prompt_tokens) == ("live", 1, 10)
        rows = {t.traffic: (t.requests, t.prompt_tokens) for t in summarize(records, include_shadow=True)}
        assert rows == {"live": (1, 10), "shadow": (2, 300)}
        assert summarize([records[1]]) == []


class TestDedupeHostile:
    """Issue 23: request ids are the clients', so deduplication must not trust them alone."""

    def test_same_id_of_two_tenants_is_billed_to_both(self) -> None:
        """One tenant's request id does not hide another tenant's record with the same id."""
        kept = dedupe([record("r1", "acme"), record("r1", "globex")])
        assert sorted(r.tenant for r in kept) == ["acme", "globex"]

    def test_reused_id_is_billed_per_served_request(self) -> None:
        """Three requests sharing an id are three records; a redelivered one is still one."""
        records = [record("r1", source=f"llmops.requests/0/{i}") for i in (1, 2, 3, 3)]
        assert len(dedupe(records)) == 3

    def test_source_comes_from_prepared(self) -> None:
        """The usage record names the request record it served (prepared.source)."""
        env = finished(checked())
        assert env.prepared is not None
        env = env.model_copy(update={"prepared": env.prepared.model_copy(update={"source": "llmops.requests/2/9"})})
        assert usage_record(env, ModelRegistry.load()).source == "llmops.requests/2/9"
