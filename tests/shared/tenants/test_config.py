"""shared/tenants/config.py: the one tenant model, its accessors, and errors that name the tenant and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.tenants import TenantConfigError, TenantsConfig

FULL: dict[str, Any] = {
    "default_reply_topics": ["llmops.responses.{tenant}"],
    "tenants": {
        "acme": {
            "request_topic": True,
            "reply_topics": ["llmops.responses.acme", "llmops.responses.gateway-*"],
            "quota": {"requests_per_minute": 60, "tokens_per_day": 200000},
            "preprocess": {"typo_correction": False},
            "grounding": {"template": "concise@1"},
            "cache": {"enabled": True, "threshold": 0.9, "ttl_s": 3600},
            "models": ["qwen2.5-coder-0.5b-instruct"],
            "gateway": {"rate_limit": {"requests_per_minute": 60, "burst": 10}, "keys": [{"sha256": "a" * 64}]},
        },
        "globex": {},
    },
}


def problem(data: Any) -> str:
    with pytest.raises(TenantConfigError) as info:
        TenantsConfig.parse(data, source="tenants.yaml")
    return str(info.value)


class TestAccessors:
    def test_each_stage_part(self) -> None:
        """Each accessor returns what the configuration says for the tenant."""
        config = TenantsConfig.parse(FULL)
        assert config.request_tenants() == ["acme"]
        assert config.reply_topics("acme") == ["llmops.responses.acme", "llmops.responses.gateway-*"]
        assert config.reply_topics("globex") == ["llmops.responses.{tenant}"]
        assert config.quota("acme").requests_per_minute == 60
        assert config.quota("acme").tokens_per_day == 200000
        assert config.typo_correction("acme") is False
        assert config.template("acme") == "concise@1"
        assert config.templates() == {"acme": "concise@1"}
        assert config.cache("acme").threshold == 0.9
        assert set(config.cache_overrides()) == {"acme"}
        assert config.models("acme") == ["qwen2.5-coder-0.5b-instruct"]
        assert [(t, k.sha256) for t, k in config.api_keys()] == [("acme", "a" * 64)]

    def test_an_undeclared_tenant_gets_every_default(self) -> None:
        """A tenant the file does not name keeps every stage's defaults."""
        config = TenantsConfig.parse(None)
        assert config.tenants == {}
        assert config.reply_topics("x") is None
        assert config.typo_correction("x") is None
        assert config.template("x") is None
        assert config.quota("x").requests_per_minute is None
        assert config.models("x") == []

    def test_explicit_leaves_defaults_out(self) -> None:
        """explicit() holds only what was set: the form the sources are merged in."""
        explicit = TenantsConfig.parse({"tenants": {"acme": {"quota": {"requests_per_minute": 5}}}}).explicit()
        assert explicit == {"tenants": {"acme": {"quota": {"requests_per_minute": 5}}}}

    def test_from_file(self, tmp_path: Path) -> None:
        """The YAML file reads into the same model."""
        path = tmp_path / "tenants.yaml"
        path.write_text("tenants:\n  acme:\n    grounding: {template: concise}\n")
        assert TenantsConfig.from_file(path).template("acme") == "concise"


class TestErrors:
    def test_unknown_key_names_tenant_and_field(self) -> None:
        """A misspelt key is refused, with the tenant and the path to it."""
        assert "tenant 'acme': grounding.templat: unknown key" in problem(
            {"tenants": {"acme": {"grounding": {"templat": "x"}}}}
        )

    def test_unknown_top_level_key(self) -> None:
        """A key the file does not know at the top is refused too."""
        assert "defaults: unknown key" in problem({"defaults": {}})

    def test_bad_value_names_tenant_field_and_value(self) -> None:
        """A value out of range names the tenant, the field and what it got."""
        text = problem({"tenants": {"acme": {"quota": {"requests_per_minute": -1}}}})
        assert "tenant 'acme': quota.requests_per_minute" in text
        assert "(got -1)" in text
        assert text.startswith("tenants.yaml: ")

    def test_cache_threshold(self) -> None:
        """A cache override is checked like LLMOPS_CACHE_* is."""
        assert "tenant 'acme': cache.threshold" in problem({"tenants": {"acme": {"cache": {"threshold": 2}}}})

    def test_bad_tenant_name(self) -> None:
        """A name that cannot be part of a topic name is refused, named."""
        assert "tenant 'ac me': the name must be" in problem({"tenants": {"ac me": {}}})

    def test_empty_reply_pattern(self) -> None:
        """An empty reply-topic glob is refused."""
        assert "tenant 'acme': reply_topics: an empty pattern" in problem(
            {"tenants": {"acme": {"reply_topics": [" "]}}}
        )

    def test_a_key_of_two_tenants(self) -> None:
        """One API key hash cannot act for two tenants."""
        key = {"gateway": {"keys": [{"sha256": "b" * 64}]}}
        assert "is a key of tenant 'acme' too" in problem({"tenants": {"acme": key, "globex": key}})

    def test_a_bad_key_hash(self) -> None:
        """A key that is not a sha256 hex digest (a clear-text key, say) is refused."""
        assert "tenant 'acme': gateway.keys.0.sha256" in problem(
            {"tenants": {"acme": {"gateway": {"keys": [{"sha256": "sk-secret"}]}}}}
        )

    def test_every_problem_is_reported(self) -> None:
        """All mistakes at once, not the first only."""
        text = problem({"tenants": {"acme": {"quota": {"x": 1}}, "globex": {"models": "all"}}})
        assert "tenant 'acme': quota.x" in text
        assert "tenant 'globex': models" in text

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A missing file is named with the variable that points at it."""
        with pytest.raises(TenantConfigError, match=r"LLMOPS_TENANTS_FILE .*missing.yaml.*cannot be read"):
            TenantsConfig.from_file(tmp_path / "missing.yaml")
