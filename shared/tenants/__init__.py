"""One tenant configuration (issue 25): the model, its accessors and the merge of the old variables.

``shared.tenants.checks`` (registry and templates) is imported on its own: it needs the registry.
"""

from shared.tenants.config import (
    ApiKey,
    CacheOverrides,
    GatewayPart,
    GroundingPart,
    PreprocessPart,
    QuotaPart,
    RateLimit,
    Tenant,
    TenantConfigError,
    TenantsConfig,
)
from shared.tenants.merge import TenantSource, merge_sources

__all__ = [
    "ApiKey",
    "CacheOverrides",
    "GatewayPart",
    "GroundingPart",
    "PreprocessPart",
    "QuotaPart",
    "RateLimit",
    "Tenant",
    "TenantConfigError",
    "TenantSource",
    "TenantsConfig",
    "merge_sources",
]
