"""shared/cache/settings.py: the cache's part of the tenant configuration."""

from __future__ import annotations

import pytest

from shared.cache import CacheSettings
from shared.runtime.settings import CoreSettings
from shared.tenants import TenantConfigError


class TestWithTenantConfig:
    def test_reads_the_configuration(self) -> None:
        """A tenant's cache part overrides the global settings for it only."""
        core = CoreSettings(tenants={"tenants": {"acme": {"cache": {"enabled": True, "ttl_s": 60}}}})
        settings = CacheSettings().with_tenant_config(core)
        assert settings.rule("acme").enabled is True
        assert settings.rule("acme").ttl_s == 60
        assert settings.rule("globex").enabled is False

    def test_nothing_configured_is_as_before(self) -> None:
        """No configuration: the settings' own rules, unchanged."""
        settings = CacheSettings(enabled=True, tenants={"acme": {"enabled": False}})
        merged = settings.with_tenant_config(CoreSettings())
        assert merged.rule("acme") == settings.rule("acme")
        assert merged.rule("globex") == settings.rule("globex")

    def test_old_and_new_disagreeing_fail(self) -> None:
        """LLMOPS_CACHE_TENANTS and the configuration setting one field differently fail, naming both."""
        core = CoreSettings(tenants={"tenants": {"acme": {"cache": {"enabled": True}}}})
        with pytest.raises(
            TenantConfigError, match=r"tenant 'acme': cache.enabled is true in .* but false in LLMOPS_CACHE"
        ):
            CacheSettings(tenants={"acme": {"enabled": False}}).with_tenant_config(core)
