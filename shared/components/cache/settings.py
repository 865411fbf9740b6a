"""Semantic cache settings (``LLMOPS_CACHE_*``): off by default, switched on globally or per tenant."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["CacheRule", "CacheSettings", "TenantCache"]


class TenantCache(BaseModel):
    """One tenant's overrides; unset fields follow the global settings."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    ttl_s: float | None = Field(default=None, gt=0.0)


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
        default_factory=dict, description='Per-tenant overrides (JSON), e.g. {"acme": {"enabled": true}}.'
    )

    def rule(self, tenant: str) -> CacheRule:
        """The switch, threshold and TTL for ``tenant``."""
        own = self.tenants.get(tenant) or TenantCache()
        return CacheRule(
            enabled=self.enabled if own.enabled is None else own.enabled,
            threshold=own.threshold or self.threshold,
            ttl_s=own.ttl_s or self.ttl_s,
        )
