"""shared/tenants/checks.py: the configuration against the registry and the templates, named by tenant and field."""

from __future__ import annotations

import pytest

from services.grounding.templates import TemplateStore
from shared.models.registry import ModelRegistry
from shared.tenants import TenantConfigError, TenantsConfig
from shared.tenants.checks import check_registry, check_templates


def registry(**extra: object) -> ModelRegistry:
    raw = ModelRegistry.load().model_dump()
    raw.update(extra)
    return ModelRegistry.model_validate(raw)


class TestCheckRegistry:
    def test_known_models_pass(self) -> None:
        """A tenant naming registry models passes."""
        check_registry(TenantsConfig.parse({"tenants": {"acme": {"models": ["gemma-3-270m"]}}}), registry())

    def test_an_unknown_model_is_named(self) -> None:
        """A model the registry does not have names the tenant and the field."""
        config = TenantsConfig.parse({"tenants": {"acme": {"models": ["gpt-9"]}}})
        with pytest.raises(TenantConfigError, match="tenant 'acme': models: 'gpt-9' is not a registry model or alias"):
            check_registry(config, registry())

    def test_an_alias_naming_an_undeclared_tenant(self) -> None:
        """An alias list naming a tenant the configuration does not declare fails."""
        alias = {"name": "chat", "variants": [{"model": "gemma-3-270m", "weight": 1}], "tenants": ["acme", "globex"]}
        config = TenantsConfig.parse({"tenants": {"acme": {}}})
        with pytest.raises(TenantConfigError, match="alias 'chat': tenants: 'globex' is not a declared tenant"):
            check_registry(config, registry(aliases={"chat": alias}))

    def test_a_model_not_open_to_the_tenant(self) -> None:
        """A tenant may not list a model the registry keeps to other tenants."""
        reg = registry()
        reg.models["gemma-3-270m"].tenants = ["globex"]
        config = TenantsConfig.parse({"tenants": {"acme": {"models": ["gemma-3-270m"]}, "globex": {}}})
        with pytest.raises(TenantConfigError, match="tenant 'acme': models: 'gemma-3-270m' is not open to the tenant"):
            check_registry(config, reg)

    def test_nothing_declared_checks_no_lists(self) -> None:
        """With no tenant declared (nothing configured) the registry's lists are as before."""
        alias = {"name": "chat", "variants": [{"model": "gemma-3-270m", "weight": 1}], "tenants": ["acme"]}
        check_registry(TenantsConfig(), registry(aliases={"chat": alias}))


class TestCheckTemplates:
    def test_an_unknown_template_is_named(self) -> None:
        """A pinned template the store lacks fails with the tenant and the field."""
        config = TenantsConfig.parse({"tenants": {"acme": {"grounding": {"template": "concise@9"}}}})
        with pytest.raises(
            TenantConfigError, match=r"tenant 'acme': grounding.template 'concise@9' is not a known template"
        ):
            check_templates(config, TemplateStore.load().get)

    def test_known_templates_pass(self) -> None:
        """name and name@version of packaged templates pass."""
        config = TenantsConfig.parse(
            {"tenants": {"a": {"grounding": {"template": "concise"}}, "b": {"grounding": {"template": "default@1"}}}}
        )
        check_templates(config, TemplateStore.load().get)
