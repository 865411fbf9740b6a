from datetime import UTC, datetime, timedelta

import pytest

from services.preprocess.quota import QuotaExceededError, QuotaTracker
from services.preprocess.tenant_switches import TenantPolicyFile
from shared.contracts.envelope import ChatMessage, Envelope, Request
from shared.models.usage import UsageRecord
from tests.conftest import make_envelope

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def tracker(**limits: int) -> QuotaTracker:
    return QuotaTracker(TenantPolicyFile.model_validate({"tenants": {"acme": limits}}))


def usage(request_id: str, tokens: int, *, at: datetime = NOW, tenant: str = "acme") -> UsageRecord:
    return UsageRecord(request_id=request_id, tenant=tenant, model="m", requested_at=at, at=at, prompt_tokens=tokens)


class TestRequestsPerMinute:
    def test_refused_over_the_limit_with_retry_after_then_recovers(self) -> None:
        """The third request in a minute is refused with when to retry; after the window it passes."""
        quota = tracker(requests_per_minute=2)
        quota.admit("acme", "r1", now=NOW)
        quota.admit("acme", "r2", now=NOW + timedelta(seconds=20))
        with pytest.raises(QuotaExceededError) as err:
            quota.admit("acme", "r3", now=NOW + timedelta(seconds=30))
        assert err.value.code == "quota_exceeded"
        assert err.value.retriable
        assert err.value.retry_after_s == 30
        quota.admit("acme", "r3", now=NOW + timedelta(seconds=61))

    def test_refusals_do_not_count_and_redeliveries_pass(self) -> None:
        """Refused requests take no place in the window; an admitted request redelivered is admitted again."""
        quota = tracker(requests_per_minute=1)
        quota.admit("acme", "r1", now=NOW)
        for i in range(5):
            with pytest.raises(QuotaExceededError):
                quota.admit("acme", f"x{i}", now=NOW + timedelta(seconds=i))
        quota.admit("acme", "r1", now=NOW + timedelta(seconds=10))
        assert quota.used("acme", now=NOW + timedelta(seconds=10)) == (1, 0)
        quota.admit("acme", "r2", now=NOW + timedelta(seconds=60))

    def test_other_tenants_are_not_limited(self) -> None:
        """Limits are per tenant; tenants without limits are never counted."""
        quota = tracker(requests_per_minute=1)
        quota.admit("acme", "r1", now=NOW)
        for i in range(10):
            quota.admit("beta", f"b{i}", now=NOW)
        assert quota.active


class TestTokensPerDay:
    def test_refused_once_the_days_tokens_are_used_until_midnight(self) -> None:
        """Usage records add up; at the limit requests wait for the next UTC day."""
        quota = tracker(tokens_per_day=100)
        quota.record(usage("a", 60), now=NOW)
        quota.admit("acme", "r1", now=NOW)
        quota.record(usage("b", 40), now=NOW)
        with pytest.raises(QuotaExceededError) as err:
            quota.admit("acme", "r2", now=NOW)
        assert err.value.retry_after_s == 12 * 3600
        quota.admit("acme", "r2", now=NOW + timedelta(hours=12))

    def test_yesterdays_tokens_and_repeated_records_do_not_count(self) -> None:
        """Only today's records count, each request once."""
        quota = tracker(tokens_per_day=100)
        quota.record(usage("old", 500, at=NOW - timedelta(days=1)), now=NOW)
        quota.record(usage("a", 30), now=NOW)
        quota.record(usage("a", 30), now=NOW)
        assert quota.used("acme", now=NOW) == (1, 30)


class TestRebuild:
    def test_state_rebuilt_from_usage_records_after_a_restart(self) -> None:
        """A fresh tracker fed the usage topic refuses what the old one would have."""
        before = tracker(requests_per_minute=2, tokens_per_day=1000)
        records = [usage("r1", 10, at=NOW), usage("r2", 10, at=NOW + timedelta(seconds=5))]
        for r in records:
            before.admit("acme", r.request_id, now=r.requested_at)
        after = tracker(requests_per_minute=2, tokens_per_day=1000)
        for r in records:
            after.record(r, now=NOW + timedelta(seconds=10))
        assert after.used("acme", now=NOW + timedelta(seconds=10)) == (2, 20)
        with pytest.raises(QuotaExceededError):
            after.admit("acme", "r3", now=NOW + timedelta(seconds=10))

    def test_admit_all_keeps_order(self) -> None:
        """One result per request: None where admitted."""
        quota = tracker(requests_per_minute=1)
        envs = [make_envelope(tenant="acme"), make_envelope(tenant="acme"), make_envelope(tenant="beta")]
        results = quota.admit_all(envs, now=NOW)
        assert [type(r).__name__ for r in results] == ["NoneType", "QuotaExceededError", "NoneType"]


def shadow_request(tenant: str = "acme") -> Envelope:
    request = Request(messages=[ChatMessage(role="user", content="Hi")], metadata={"shadow": "replay"})
    return Envelope(request=request, tenant=tenant)


class TestShadowTraffic:
    def test_shadow_requests_are_counted_apart_from_live_ones(self) -> None:
        """A replay passes a tenant at its live limit and leaves the live window as it was."""
        quota = tracker(requests_per_minute=1)
        results = quota.admit_all([make_envelope(tenant="acme"), shadow_request()], now=NOW)
        assert results == [None, None]
        assert quota.used("acme", now=NOW) == (1, 0)
        assert quota.used("acme", now=NOW, shadow=True) == (1, 0)
        [refused] = quota.admit_all([make_envelope(tenant="acme")], now=NOW)
        assert isinstance(refused, QuotaExceededError)

    def test_marking_requests_shadow_does_not_dodge_the_limits(self) -> None:
        """Shadow traffic meets the tenant's limits too, in its own window (T8: a client cannot opt out)."""
        quota = tracker(requests_per_minute=2)
        results = quota.admit_all([shadow_request() for _ in range(3)], now=NOW)
        assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "QuotaExceededError"]
        refused = results[2]
        assert refused is not None
        assert "shadow traffic" in refused.message
        assert quota.used("acme", now=NOW) == (0, 0)  # the live window is untouched

    def test_shadow_usage_records_count_in_the_shadow_window(self) -> None:
        """A shadow usage record, live or at a rebuild, counts for shadow traffic, not for the tenant's live use."""
        quota = tracker(requests_per_minute=1, tokens_per_day=100)
        shadow = usage("s1", 500).model_copy(update={"traffic": "shadow"})
        quota.record(shadow, now=NOW)
        assert quota.used("acme", now=NOW) == (0, 0)
        assert quota.used("acme", now=NOW, shadow=True) == (1, 500)
        quota.admit("acme", "r1", now=NOW)
        quota.record(usage("r1", 50), now=NOW)
        assert quota.used("acme", now=NOW) == (1, 50)

    def test_records_without_the_field_count_as_live(self) -> None:
        """A usage record written before ``traffic`` existed is live traffic."""
        old = UsageRecord.model_validate_json(
            '{"request_id": "o1", "tenant": "acme", "model": "m", "requested_at": "2026-03-01T12:00:00Z",'
            ' "at": "2026-03-01T12:00:00Z", "prompt_tokens": 7}'
        )
        quota = tracker(tokens_per_day=100)
        quota.record(old, now=NOW)
        assert quota.used("acme", now=NOW) == (1, 7)


def test_quota_refusals_stay_out_of_the_dlq() -> None:
    """A quota refusal is answered, never dead-lettered (it is not a broken message)."""
    from services.preprocess.quota import QuotaExceededError

    assert QuotaExceededError("over", retry_after_s=1).dead_letter is False


class TestHostileClients:
    """Issue 23: one request id reused, and state that only grows."""

    def test_reusing_one_request_id_does_not_bypass_the_limit(self) -> None:
        """100 records with one id under 2 a minute: 2 admitted (it was 100), each record its own request."""
        quota = tracker(requests_per_minute=2)
        admitted = 0
        for offset in range(100):
            try:
                quota.admit("acme", "same-id", now=NOW, source=f"llmops.requests/0/{offset}")
            except QuotaExceededError:
                continue
            admitted += 1
        assert admitted == 2

    def test_a_redelivered_record_passes_again(self) -> None:
        """The same id at the same record is a redelivery: admitted again, counted once."""
        quota = tracker(requests_per_minute=1)
        quota.admit("acme", "r1", now=NOW, source="llmops.requests/0/7")
        quota.admit("acme", "r1", now=NOW, source="llmops.requests/0/7")
        assert quota.used("acme", now=NOW) == (1, 0)

    def test_usage_of_a_reused_id_counts_every_served_request(self) -> None:
        """Tokens of each served request count, though they share an id (the first record alone counted)."""
        quota = tracker(tokens_per_day=100)
        for offset in range(3):
            record = usage("same-id", 40).model_copy(update={"source": f"llmops.requests/0/{offset}"})
            quota.record(record, now=NOW)
            quota.record(record, now=NOW)  # a redelivered usage record
        assert quota.used("acme", now=NOW)[1] == 120

    def test_state_of_unlimited_tenants_is_not_kept(self) -> None:
        """Usage records of tenants without limits leave no state (it grew with every tenant ever seen)."""
        quota = tracker(requests_per_minute=5)
        for i in range(1000):
            quota.record(usage(f"r{i}", 1, tenant=f"tenant-{i}"), now=NOW)
        assert len(quota) == 0

    def test_state_shrinks_once_the_window_is_empty(self) -> None:
        """A limited tenant's counts go once nothing is left in them."""
        quota = tracker(requests_per_minute=5)
        quota.admit_all([make_envelope(tenant="acme")], now=NOW)
        assert len(quota) == 1
        quota.admit_all([make_envelope(tenant="beta")], now=NOW + timedelta(minutes=2))
        assert len(quota) == 0


class TestPossibleRedeliveries:
    """Issue 23, finding 9: a request a partition's previous owner admitted must not get a 429 here too."""

    def test_a_possible_redelivery_is_admitted_over_the_limit_and_counted(self) -> None:
        quota = tracker(requests_per_minute=1)
        quota.admit("acme", "r1", now=NOW, source="llmops.requests/0/1")
        with pytest.raises(QuotaExceededError):
            quota.admit("acme", "r2", now=NOW, source="llmops.requests/0/2")
        assert quota.admit("acme", "r2", now=NOW, source="llmops.requests/0/2", maybe_redelivered=True)
        assert quota.used("acme", now=NOW) == (2, 0)
        with pytest.raises(QuotaExceededError):
            quota.admit("acme", "r3", now=NOW, source="llmops.requests/0/3")

    def test_admit_all_admits_the_marked_and_counts_them(self) -> None:
        quota = tracker(requests_per_minute=1)
        envs = [make_envelope(tenant="acme") for _ in range(3)]
        results = quota.admit_all(
            envs, now=NOW, sources=[f"llmops.requests/0/{i}" for i in range(3)], maybe_redelivered=[True, True, False]
        )
        assert [r is None for r in results] == [True, True, False]
        assert quota.over_limit_redeliveries == 1
