from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway.auth import AuthConfig, Authenticator, KeyEntry, RateLimit, RateLimiter, TenantConfig, hash_key


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestAuthenticator:
    def test_known_key_maps_to_its_tenant_with_the_tenant_rules(self) -> None:
        """A key is found by its sha256 and carries its tenant's models and rate limit."""
        config = AuthConfig(
            tenants={"acme": TenantConfig(models=["gemma-3-270m"], rate_limit=RateLimit(requests_per_minute=6))},
            keys=[KeyEntry(sha256=hash_key("sk-acme"), tenant="acme", name="ci")],
        )
        principal = Authenticator(config).authenticate("sk-acme")
        assert principal is not None
        assert principal.tenant == "acme"
        assert principal.key_name == "ci"
        assert principal.rate_limit.requests_per_minute == 6
        assert principal.config.allows("gemma-3-270m")
        assert not principal.config.allows("qwen2.5-coder-0.5b-instruct")

    def test_missing_or_unknown_keys_are_refused(self) -> None:
        """No key, an empty key and a key whose hash is not configured all authenticate as nobody."""
        auth = Authenticator(AuthConfig(keys=[KeyEntry(sha256=hash_key("sk-1"), tenant="t")]))
        assert auth.authenticate(None) is None
        assert auth.authenticate("") is None
        assert auth.authenticate("sk-2") is None
        assert auth.authenticate(hash_key("sk-1")) is None  # the stored hash is not a key

    def test_key_limit_overrides_the_tenant_limit_and_tenants_default_to_everything(self) -> None:
        """A key's own limit wins; a tenant with no config may use every model."""
        entry = KeyEntry(sha256=hash_key("k"), tenant="free", rate_limit=RateLimit(requests_per_minute=1, burst=1))
        principal = Authenticator(AuthConfig(keys=[entry])).authenticate("k")
        assert principal is not None
        assert principal.rate_limit.burst == 1
        assert principal.config.allows("anything")

    def test_config_reads_yaml_and_merges_env(self, tmp_path: Path) -> None:
        """The YAML file and the env JSON merge, the env winning for the same key hash."""
        path = tmp_path / "auth.yaml"
        path.write_text(
            f"tenants:\n  acme: {{models: [m1], template: legal}}\nkeys:\n  - {{sha256: {hash_key('a')}, tenant: acme}}\n"
        )
        file_config = AuthConfig.from_yaml(path)
        assert file_config.tenants["acme"].template == "legal"
        merged = file_config.merged(AuthConfig(keys=[KeyEntry(sha256=hash_key("a"), tenant="other")]))
        assert [k.tenant for k in merged.keys] == ["other"]
        assert "acme" in merged.tenants

    def test_a_clear_text_key_is_not_accepted_as_a_hash(self) -> None:
        """Config entries must be sha256 hex digests."""
        with pytest.raises(ValidationError):
            KeyEntry(sha256="sk-plain-key", tenant="t")


class TestRateLimiter:
    def test_burst_then_wait_then_refill(self) -> None:
        """A bucket allows `burst` at once, then answers the wait, and refills at the sustained rate."""
        clock = _Clock()
        limiter = RateLimiter(clock)
        limit = RateLimit(requests_per_minute=60, burst=2)
        assert limiter.acquire("k", limit) == 0.0
        assert limiter.acquire("k", limit) == 0.0
        wait = limiter.acquire("k", limit)
        assert wait == pytest.approx(1.0)
        assert RateLimiter.retry_after(wait) == "1"
        assert limiter.acquire("other", limit) == 0.0  # per key
        clock.now += 1.0
        assert limiter.acquire("k", limit) == 0.0
        assert limiter.acquire("k", limit) > 0

    def test_retry_after_is_whole_seconds_at_least_one(self) -> None:
        """Retry-After rounds up and never says 0."""
        assert RateLimiter.retry_after(0.01) == "1"
        assert RateLimiter.retry_after(2.2) == "3"
