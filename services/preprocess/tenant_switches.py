"""Per-tenant and per-request switches for the preprocess stage: typo correction, quotas, reply topics.

Preprocess's part of the tenant configuration (``shared.tenants``, ``LLMOPS_TENANTS_FILE``): each
tenant's ``preprocess.typo_correction``, ``quota`` and ``reply_topics``, and ``default_reply_topics``.
The old ``LLMOPS_PREPROCESS_TENANTS_PATH`` file (this module's ``TenantPolicyFile`` shape) is merged
into it, deprecated; a field both set differently stops the service at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.envelope import Envelope
from shared.models.registry import ModelRegistry
from shared.tenants import TenantsConfig, TenantSource
from shared.tenants.checks import check_registry

if TYPE_CHECKING:
    from services.preprocess.settings import PreprocessSettings

__all__ = ["TYPO_METADATA_KEY", "TenantPolicy", "TenantPolicyFile", "tenant_policy"]

#: ``request.metadata[TYPO_METADATA_KEY]`` = ``"off"`` (or ``"on"``) decides for one request.
TYPO_METADATA_KEY = "typo_correction"
_OFF = {"off", "false", "no", "0"}
_ON = {"on", "true", "yes", "1"}


class TenantPolicy(BaseModel):
    """What one tenant has switched; unset fields follow the service settings."""

    model_config = ConfigDict(extra="forbid")

    typo_correction: bool | None = Field(default=None, description="Correct typos in this tenant's prompts.")
    requests_per_minute: int | None = Field(
        default=None, ge=0, description="Most requests admitted in any 60 s; unlimited when absent."
    )
    tokens_per_day: int | None = Field(
        default=None, ge=0, description="Most prompt plus completion tokens per UTC day; unlimited when absent."
    )
    reply_topics: list[str] | None = Field(
        default=None,
        description="Globs of the topics this tenant's answers may go to ({tenant}: its name); else the defaults.",
    )


class TenantPolicyFile(BaseModel):
    """The tenants YAML file.

    Example:
        >>> policy = TenantPolicyFile.model_validate({"tenants": {"acme": {"typo_correction": False}}})
        >>> policy.typo_correction(envelope_of_acme, default=True)
        False

    """

    model_config = ConfigDict(extra="forbid")

    tenants: dict[str, TenantPolicy] = Field(default_factory=dict)
    default_reply_topics: list[str] | None = Field(
        default=None,
        description="Reply-topic globs for tenants without their own; any reply-topic setting turns the check on.",
    )

    @classmethod
    def load(cls, path: Path | None) -> TenantPolicyFile:
        """Read the file; no path means no tenant overrides."""
        if path is None:
            return cls()
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    @classmethod
    def from_config(cls, config: TenantsConfig) -> TenantPolicyFile:
        """Preprocess's part of the tenant configuration."""
        return cls(
            tenants={
                name: TenantPolicy(
                    typo_correction=config.typo_correction(name),
                    requests_per_minute=config.quota(name).requests_per_minute,
                    tokens_per_day=config.quota(name).tokens_per_day,
                    reply_topics=tenant.reply_topics,
                )
                for name, tenant in config.tenants.items()
            },
            default_reply_topics=config.default_reply_topics,
        )

    def as_source(self, name: str) -> TenantSource:
        """The old file in the unified shape, to be merged into the tenant configuration."""
        tenants: dict[str, Any] = {}
        for tenant, policy in self.tenants.items():
            own = policy.model_dump(exclude_unset=True)
            entry: dict[str, Any] = {}
            if "typo_correction" in own:
                entry["preprocess"] = {"typo_correction": own["typo_correction"]}
            quota = {k: own[k] for k in ("requests_per_minute", "tokens_per_day") if k in own}
            if quota:
                entry["quota"] = quota
            if "reply_topics" in own:
                entry["reply_topics"] = own["reply_topics"]
            tenants[tenant] = entry
        data: dict[str, Any] = {"tenants": tenants}
        if self.default_reply_topics is not None:
            data["default_reply_topics"] = self.default_reply_topics
        return TenantSource(name, data)

    def typo_correction(self, env: Envelope, *, default: bool) -> bool:
        """The request's own switch, else the tenant's, else ``default``."""
        metadata = env.request.metadata if env.request else {}
        value = metadata.get(TYPO_METADATA_KEY, "").strip().lower()
        if value in _OFF:
            return False
        if value in _ON:
            return True
        tenant = self.tenants.get(env.tenant)
        if tenant is not None and tenant.typo_correction is not None:
            return tenant.typo_correction
        return default


def tenant_policy(settings: PreprocessSettings) -> TenantPolicyFile:
    """Preprocess's tenant policy: the tenant configuration with ``LLMOPS_PREPROCESS_TENANTS_PATH`` merged in.

    Checked at start: a disagreement between the two, or a tenant's model the registry does not open to it,
    raises ``TenantConfigError`` naming the tenant and the field.

    Example:
        >>> tenant_policy(PreprocessSettings(core=CoreSettings(tenants={"tenants": {"acme": {"quota": {
        ...     "requests_per_minute": 5}}}}))).tenants["acme"].requests_per_minute
        5

    """
    old = TenantPolicyFile.load(settings.tenants_path)
    config = settings.core.tenant_config(old.as_source(f"LLMOPS_PREPROCESS_TENANTS_PATH ({settings.tenants_path})"))
    check_registry(config, ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model))
    return TenantPolicyFile.from_config(config)
