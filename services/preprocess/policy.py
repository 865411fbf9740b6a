"""Per-tenant and per-request switches for the preprocess stage: typo correction, quotas, reply topics."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.messaging.envelope import Envelope

__all__ = ["TYPO_METADATA_KEY", "TenantPolicy", "TenantPolicyFile"]

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
