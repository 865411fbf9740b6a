"""Semantic cache settings (``LLMOPS_CACHE_*``): off by default, switched on globally or per tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.tenants import CacheOverrides, TenantSource

if TYPE_CHECKING:
    from shared.runtime.settings import CoreSettings

__all__ = ["CacheRule", "CacheSettings", "TenantCache"]


#: One tenant's overrides; unset fields follow the global settings (the tenant configuration's ``cache`` part).
TenantCache = CacheOverrides


@dataclass(frozen=True)
class CacheRule:
    """What applies to one tenant."""

    enabled: bool
    threshold: float
    ttl_s: float


class CacheSettings(BaseSettings):
    """Read by safety (lookups) and postprocess (what it offers to the cache).

    Example:
        >>> settings = CacheSettings(tenants={"acme": {"enabled": True, "threshold": 0.9}})
        >>> settings.rule("acme")
        CacheRule(enabled=True, threshold=0.9, ttl_s=86400.0)

    """

    model_config = SettingsConfigDict(env_prefix="LLMOPS_CACHE_", env_file=".env", extra="ignore")

    enabled: bool = Field(default=False, description="Cache answers for every tenant (tenants may override).")
    threshold: float = Field(
        default=0.95, gt=0.0, le=1.0, description="Least cosine similarity of two prompts for a hit."
    )
    ttl_s: float = Field(default=86_400.0, gt=0.0, description="How long an answer may be given again.")
    max_entries: int = Field(default=100_000, ge=1, description="Entries each replica holds; the oldest go first.")
    tenants: dict[str, TenantCache] = Field(
        default_factory=dict,
        description=(
            'Deprecated (LLMOPS_TENANTS_FILE: a tenant\'s cache part): per-tenant overrides (JSON), e.g. {"acme": '
            '{"enabled": true}}.'
        ),
    )

    def with_tenant_config(self, core: CoreSettings) -> CacheSettings:
        """These settings with the tenant configuration's cache overrides (``LLMOPS_CACHE_TENANTS`` merged in).

        Example:
            >>> core = CoreSettings(tenants={"tenants": {"acme": {"cache": {"enabled": True}}}})
            >>> CacheSettings().with_tenant_config(core).rule("acme").enabled
            True

        """
        return self.model_copy(update={"tenants": core.tenant_config(self.tenants_source()).cache_overrides()})

    def tenants_source(self) -> TenantSource:
        """``LLMOPS_CACHE_TENANTS`` (deprecated) in the unified shape, to be merged."""
        return TenantSource(
            "LLMOPS_CACHE_TENANTS",
            {"tenants": {name: {"cache": own.model_dump(exclude_unset=True)} for name, own in self.tenants.items()}},
        )

    def rule(self, tenant: str) -> CacheRule:
        """The switch, threshold and TTL for ``tenant``."""
        own = self.tenants.get(tenant) or TenantCache()
        return CacheRule(
            enabled=self.enabled if own.enabled is None else own.enabled,
            threshold=own.threshold or self.threshold,
            ttl_s=own.ttl_s or self.ttl_s,
        )
