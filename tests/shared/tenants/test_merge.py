"""shared/tenants/merge.py: the old variables merge into the one configuration; two sources never silently disagree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.tenants import TenantConfigError, TenantSource, merge_sources
from shared.tenants import merge as merge_module


def unified(data: Mapping[str, Any]) -> TenantSource:
    return TenantSource("LLMOPS_TENANTS_FILE (t.yaml)", data, deprecated=False)


class TestMergeSources:
    def test_disjoint_fields_merge(self) -> None:
        """Fields set by one source each all land in the result."""
        config = merge_sources(
            unified({"tenants": {"acme": {"quota": {"requests_per_minute": 5}}}}),
            TenantSource("LLMOPS_CACHE_TENANTS", {"tenants": {"acme": {"cache": {"enabled": True}}}}),
        )
        assert config.quota("acme").requests_per_minute == 5
        assert config.cache("acme").enabled is True

    def test_a_disagreement_names_tenant_field_and_both_sources(self) -> None:
        """The same field set differently fails, naming both sources."""
        with pytest.raises(TenantConfigError) as info:
            merge_sources(
                unified({"tenants": {"acme": {"grounding": {"template": "concise@1"}}}}),
                TenantSource(
                    "LLMOPS_GROUNDING_TENANT_TEMPLATES", {"tenants": {"acme": {"grounding": {"template": "default"}}}}
                ),
            )
        assert str(info.value) == (
            "tenant 'acme': grounding.template is \"concise@1\" in LLMOPS_TENANTS_FILE (t.yaml) "
            'but "default" in LLMOPS_GROUNDING_TENANT_TEMPLATES'
        )

    def test_two_old_variables_disagreeing(self) -> None:
        """Two old variables setting one field differently fail too (the gateway's template and grounding's)."""
        with pytest.raises(TenantConfigError, match="LLMOPS_GATEWAY_AUTH_FILE tenants but"):
            merge_sources(
                TenantSource(
                    "LLMOPS_GATEWAY_AUTH_FILE tenants", {"tenants": {"acme": {"grounding": {"template": "a"}}}}
                ),
                TenantSource(
                    "LLMOPS_GROUNDING_TENANT_TEMPLATES", {"tenants": {"acme": {"grounding": {"template": "b"}}}}
                ),
            )

    def test_the_same_value_twice_is_fine(self) -> None:
        """Agreeing sources merge quietly (a list compares whole)."""
        topics = {"tenants": {"acme": {"reply_topics": ["llmops.responses.acme"]}}}
        config = merge_sources(unified(topics), TenantSource("LLMOPS_PREPROCESS_TENANTS_PATH", topics))
        assert config.reply_topics("acme") == ["llmops.responses.acme"]

    def test_an_old_source_with_a_mistake_is_named(self) -> None:
        """A mistake in an old variable names it."""
        with pytest.raises(TenantConfigError, match=r"^LLMOPS_CACHE_TENANTS: tenant 'acme': cache.ttl_s"):
            merge_sources(TenantSource("LLMOPS_CACHE_TENANTS", {"tenants": {"acme": {"cache": {"ttl_s": 0}}}}))

    def test_old_variables_are_warned_about_once(self) -> None:
        """An old variable in use logs tenants.deprecated_variable, once per process."""
        merge_module._warned.clear()
        old = TenantSource("LLMOPS_CACHE_TENANTS", {"tenants": {"acme": {"cache": {"enabled": True}}}})
        with capture_logs() as logs:
            merge_sources(old)
            merge_sources(old)
        warned = [entry for entry in logs if entry["event"] == "tenants.deprecated_variable"]
        assert [entry["variable"] for entry in warned] == ["LLMOPS_CACHE_TENANTS"]

    def test_an_unset_old_variable_adds_nothing(self) -> None:
        """An empty source is skipped (no warning, nothing declared)."""
        config = merge_sources(unified({}), TenantSource("LLMOPS_CACHE_TENANTS", {"tenants": {}}))
        assert config.tenants == {}

    def test_a_tenant_declared_empty_keeps_another_sources_fields(self) -> None:
        """`acme: {}` in one source does not wipe what another sets for acme."""
        config = merge_sources(
            TenantSource("LLMOPS_CACHE_TENANTS", {"tenants": {"acme": {"cache": {"enabled": True}}}}),
            unified({"tenants": {"acme": {}}}),
        )
        assert config.cache("acme").enabled is True
