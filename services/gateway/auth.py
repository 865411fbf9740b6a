"""API keys, tenants and per-key rate limits: plain logic, no HTTP or Kafka.

Keys are stored as their sha256 (hex), never in clear. The gateway's part of the tenant
configuration (``shared.tenants``: each tenant's ``models``, ``grounding.template`` and ``gateway``
keys and rate limit) is what it serves; the auth file (``LLMOPS_GATEWAY_AUTH_FILE``, or the same shape
as JSON in ``LLMOPS_GATEWAY_AUTH``) is merged into it: its keys may stay there (a secret of their own),
its ``tenants`` section is deprecated. A field both set differently stops the gateway at start::

    tenants:
      acme:
        models: [qwen2.5-coder-0.5b-instruct]   # empty or absent: every registry model
        template: default                       # the tenant's prompt template
        rate_limit: {requests_per_minute: 60, burst: 10}
    keys:
      - sha256: 5e884898da28047151d0e56f8dc62927...  # `python -m services.gateway.auth <key>` prints it
        tenant: acme
        name: acme-ci                           # a label for logs, never the key
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.tenants import RateLimit, TenantsConfig, TenantSource

__all__ = [
    "AuthConfig",
    "Authenticator",
    "KeyEntry",
    "Principal",
    "RateLimit",
    "RateLimiter",
    "TenantConfig",
    "hash_key",
    "new_key",
]


def hash_key(key: str) -> str:
    """The stored form of an API key: sha256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(prefix: str = "sk-llmops-") -> str:
    """A fresh random API key."""
    return prefix + secrets.token_urlsafe(24)


class TenantConfig(BaseModel):
    """What a tenant may use."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=list, description="Allowed models; empty means all.")
    template: str | None = Field(default=None, description="Prompt template id used for this tenant's requests.")
    rate_limit: RateLimit = Field(default_factory=RateLimit, description="Applied to each of the tenant's keys.")

    def allows(self, model: str) -> bool:
        """Whether the tenant may use ``model``."""
        return not self.models or model in self.models


class KeyEntry(BaseModel):
    """One API key, by its hash."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    tenant: str = Field(min_length=1, max_length=64)
    name: str = ""
    rate_limit: RateLimit | None = Field(default=None, description="Overrides the tenant's limit for this key.")


class AuthConfig(BaseModel):
    """Tenants and the keys that act for them."""

    model_config = ConfigDict(extra="forbid")

    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    keys: list[KeyEntry] = Field(default_factory=list)

    @classmethod
    def from_yaml(cls, path: Path) -> AuthConfig:
        """Read the config file."""
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})

    @classmethod
    def from_tenants(cls, config: TenantsConfig) -> AuthConfig:
        """The gateway's part of the tenant configuration."""
        return cls(
            tenants={
                name: TenantConfig(
                    models=tenant.models,
                    template=tenant.grounding.template,
                    rate_limit=tenant.gateway.rate_limit or RateLimit(),
                )
                for name, tenant in config.tenants.items()
            },
            keys=[
                KeyEntry(sha256=key.sha256, tenant=name, name=key.name, rate_limit=key.rate_limit)
                for name, key in config.api_keys()
            ],
        )

    def as_sources(self, name: str) -> tuple[TenantSource, TenantSource]:
        """The old config in the unified shape: its keys (kept apart as a secret: not deprecated), its tenants."""
        keys: dict[str, Any] = {}
        for key in self.keys:
            entry = key.model_dump(exclude_unset=True, exclude={"tenant"})
            keys.setdefault(key.tenant, {"gateway": {"keys": []}})["gateway"]["keys"].append(entry)
        tenants: dict[str, Any] = {}
        for tenant, config in self.tenants.items():
            own = config.model_dump(exclude_unset=True)
            entry = {k: v for k, v in {"models": own.get("models")}.items() if v is not None}
            if own.get("template") is not None:
                entry["grounding"] = {"template": own["template"]}
            if "rate_limit" in own:
                entry["gateway"] = {"rate_limit": own["rate_limit"]}
            tenants[tenant] = entry
        return (
            TenantSource(f"{name} keys", {"tenants": keys}, deprecated=False),
            TenantSource(f"{name} tenants", {"tenants": tenants}),
        )

    def merged(self, other: AuthConfig) -> AuthConfig:
        """A copy of this config with ``other``'s tenants and keys added (``other`` wins on a clash)."""
        keys = {k.sha256: k for k in self.keys} | {k.sha256: k for k in other.keys}
        return AuthConfig(tenants=self.tenants | other.tenants, keys=list(keys.values()))


@dataclass(frozen=True)
class Principal:
    """Who a request acts for."""

    tenant: str
    key_name: str
    key_hash: str
    config: TenantConfig
    rate_limit: RateLimit


class Authenticator:
    """Finds the tenant of an API key.

    Example:
        >>> auth = Authenticator(AuthConfig(keys=[KeyEntry(sha256=hash_key("sk-1"), tenant="acme")]))
        >>> auth.authenticate("sk-1").tenant
        'acme'

    """

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._by_hash = {k.sha256: k for k in config.keys}

    def authenticate(self, key: str | None) -> Principal | None:
        """The principal of ``key``, or ``None`` for a missing or unknown key."""
        if not key:
            return None
        digest = hash_key(key)
        entry = self._by_hash.get(digest)
        # The dict lookup is on the hash, not the key, so its timing tells nothing useful about
        # the key; compare_digest keeps the final check constant-time anyway.
        if entry is None or not hmac.compare_digest(entry.sha256, digest):
            return None
        tenant = self.config.tenants.get(entry.tenant, TenantConfig())
        return Principal(
            tenant=entry.tenant,
            key_name=entry.name or entry.sha256[:8],
            key_hash=entry.sha256,
            config=tenant,
            rate_limit=entry.rate_limit or tenant.rate_limit,
        )


class RateLimiter:
    """Token buckets per key: ``acquire`` answers 0 when allowed, else the seconds to wait.

    Example:
        >>> limiter = RateLimiter()
        >>> limiter.acquire("k", RateLimit(requests_per_minute=60, burst=1))
        0.0

    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.monotonic
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, limit: RateLimit) -> float:
        """Take one token for ``key``; 0.0 if it was there, else how long until one is."""
        now = self._clock()
        rate = limit.requests_per_minute / 60.0
        tokens, last = self._buckets.get(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The ``Retry-After`` header value (whole seconds, at least 1)."""
        return str(max(1, math.ceil(wait_s)))


if __name__ == "__main__":  # pragma: no cover - a helper for operators
    for arg in sys.argv[1:] or [new_key()]:
        print(f"{arg}\tsha256: {hash_key(arg)}")  # noqa: T201
