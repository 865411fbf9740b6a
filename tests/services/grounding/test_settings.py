"""services/grounding/settings.py: grounding's part of the tenant configuration (pinned templates)."""

from __future__ import annotations

import pytest

from services.grounding.settings import GroundingSettings
from services.grounding.templates import TemplateStore
from shared.runtime.settings import CoreSettings
from shared.tenants import TenantConfigError

PINNED = {"tenants": {"acme": {"grounding": {"template": "concise@1"}}}}


class TestTemplatesByTenant:
    def test_reads_the_configuration(self) -> None:
        """Each tenant's grounding.template is its pinned template."""
        settings = GroundingSettings(core=CoreSettings(tenants=PINNED))
        assert settings.templates_by_tenant(TemplateStore.load().get) == {"acme": "concise@1"}

    def test_the_old_variable_is_merged(self) -> None:
        """LLMOPS_GROUNDING_TENANT_TEMPLATES still pins, beside the configuration's."""
        settings = GroundingSettings(core=CoreSettings(tenants=PINNED), tenant_templates={"globex": "default@1"})
        assert settings.templates_by_tenant(TemplateStore.load().get) == {"acme": "concise@1", "globex": "default@1"}

    def test_old_and_new_disagreeing_fail(self) -> None:
        """The same tenant pinned differently by both fails, naming both."""
        settings = GroundingSettings(core=CoreSettings(tenants=PINNED), tenant_templates={"acme": "default"})
        with pytest.raises(
            TenantConfigError, match=r"grounding.template is .* but .* in LLMOPS_GROUNDING_TENANT_TEMPLATES"
        ):
            settings.templates_by_tenant(TemplateStore.load().get)

    def test_an_unknown_template_fails_at_start(self) -> None:
        """A pinned template the store lacks is named with its tenant."""
        core = CoreSettings(tenants={"tenants": {"acme": {"grounding": {"template": "concise@9"}}}})
        with pytest.raises(
            TenantConfigError, match=r"tenant 'acme': grounding.template 'concise@9' is not a known template"
        ):
            GroundingSettings(core=core).templates_by_tenant(TemplateStore.load().get)
