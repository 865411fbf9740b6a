"""One tenant configuration (issue 25): each tenant's part for every stage, in one validated model.

The file (``LLMOPS_TENANTS_FILE``, YAML) or the same shape as JSON (``LLMOPS_TENANTS``)::

    default_reply_topics: ["llmops.responses.{tenant}", "llmops.responses.gateway-*"]
    tenants:
      acme:
        request_topic: true                          # llmops.requests.acme: preprocess takes the tenant from it
        reply_topics: ["llmops.responses.acme"]      # else default_reply_topics, else the built-in patterns
        quota: {requests_per_minute: 60, tokens_per_day: 200000}
        preprocess: {typo_correction: false}
        grounding: {template: concise@1}
        cache: {enabled: true, threshold: 0.9, ttl_s: 3600}
        models: [qwen2.5-coder-0.5b-instruct]        # models and aliases it may use; empty: all the registry allows
        gateway:
          rate_limit: {requests_per_minute: 60, burst: 10}
          keys: [{sha256: 5e8848..., name: acme-ci}]

Every stage reads its part through an accessor here (``quota``, ``template``, ``cache``, ...); nothing
else parses tenant settings. A mistake is a ``TenantConfigError`` naming the tenant and the field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    "TenantsConfig",
    "field_label",
]

#: A tenant name that can be part of a topic name (Kafka allows A-Z a-z 0-9 . _ -).
TENANT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class TenantConfigError(ValueError):
    """A mistake in the tenant configuration; each problem names the tenant and the field.

    Example:
        >>> str(TenantConfigError(["tenant 'acme': quota.requests_per_minute: must be >= 0"], source="LLMOPS_TENANTS"))
        "LLMOPS_TENANTS: tenant 'acme': quota.requests_per_minute: must be >= 0"

    """

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        text = "; ".join(problems)
        super().__init__(f"{source}: {text}" if source else text)


def field_label(path: tuple[str | int, ...]) -> str:
    """``("tenants", "acme", "cache", "enabled")`` as ``tenant 'acme': cache.enabled``."""
    if len(path) >= 2 and path[0] == "tenants":  # noqa: PLR2004 - ("tenants", name, ...)
        rest = ".".join(str(p) for p in path[2:])
        return f"tenant {path[1]!r}" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in path) or "(top level)"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateLimit(_Part):
    """A token bucket: ``requests_per_minute`` sustained, ``burst`` at once (the gateway's, per API key)."""

    requests_per_minute: float = Field(default=600.0, gt=0)
    burst: int = Field(default=20, ge=1)


class ApiKey(_Part):
    """One gateway API key of the tenant, by its sha256 (``python -m services.gateway.auth <key>``)."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the key, hex; never the key itself.")
    name: str = Field(default="", description="A label for logs, never the key.")
    rate_limit: RateLimit | None = Field(default=None, description="Overrides the tenant's limit for this key.")


class GatewayPart(_Part):
    """What the gateway reads: the tenant's API keys and their rate limit."""

    rate_limit: RateLimit | None = Field(default=None, description="Each key's limit; the gateway default if unset.")
    keys: list[ApiKey] = Field(default_factory=list, description="The tenant's API keys (hashes).")


class QuotaPart(_Part):
    """Preprocess's quotas; unlimited when unset."""

    requests_per_minute: int | None = Field(default=None, ge=0, description="Most requests admitted in any 60 s.")
    tokens_per_day: int | None = Field(default=None, ge=0, description="Most prompt plus completion tokens per day.")


class PreprocessPart(_Part):
    """Preprocess's switches; unset ones follow ``LLMOPS_PREPROCESS_*``."""

    typo_correction: bool | None = Field(default=None, description="Correct typos in this tenant's prompts.")


class GroundingPart(_Part):
    """Grounding's part: the prompt template pinned for the tenant."""

    template: str | None = Field(
        default=None, min_length=1, description="name or name@version; a live request cannot override it."
    )


class CacheOverrides(_Part):
    """The semantic cache's overrides; unset fields follow ``LLMOPS_CACHE_*``."""

    enabled: bool | None = None
    threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    ttl_s: float | None = Field(default=None, gt=0.0)


class Tenant(_Part):
    """One tenant's part for every stage; unset fields keep each stage's defaults."""

    request_topic: bool = Field(default=False, description="Has a request topic of its own (<prefix>requests.<name>).")
    reply_topics: list[str] | None = Field(
        default=None, description="Globs of the topics its answers may go to ({tenant}: its name)."
    )
    quota: QuotaPart = Field(default_factory=QuotaPart)
    preprocess: PreprocessPart = Field(default_factory=PreprocessPart)
    grounding: GroundingPart = Field(default_factory=GroundingPart)
    cache: CacheOverrides = Field(default_factory=CacheOverrides)
    models: list[str] = Field(default_factory=list, description="Models and aliases it may use; empty: all allowed.")
    gateway: GatewayPart = Field(default_factory=GatewayPart)

    @field_validator("reply_topics")
    @classmethod
    def _patterns_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not p.strip() for p in value):
            msg = "an empty pattern"
            raise ValueError(msg)
        return value


class TenantsConfig(_Part):
    """The tenant configuration: the file, ``LLMOPS_TENANTS``, or the old variables merged into it.

    Example:
        >>> config = TenantsConfig.parse({"tenants": {"acme": {"grounding": {"template": "concise@1"}}}})
        >>> config.template("acme"), config.template("globex")
        ('concise@1', None)
        >>> TenantsConfig.parse({"tenants": {"acme": {"quota": {"rpm": 5}}}})
        Traceback (most recent call last):
        TenantConfigError: tenant 'acme': quota.rpm: unknown key

    """

    default_reply_topics: list[str] | None = Field(
        default=None, description="Reply-topic globs of tenants without their own; unset: the built-in patterns."
    )
    tenants: dict[str, Tenant] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_and_keys(self) -> TenantsConfig:
        problems = [
            f"tenant {name!r}: the name must be 1-64 of A-Z a-z 0-9 . _ - (it names topics)"
            for name in self.tenants
            if not TENANT_NAME.match(name)
        ]
        owners: dict[str, str] = {}
        for name, tenant in self.tenants.items():
            for key in tenant.gateway.keys:
                other = owners.setdefault(key.sha256, name)
                if other != name:
                    problems.append(
                        f"tenant {name!r}: gateway.keys: {key.sha256[:8]}... is a key of tenant {other!r} too"
                    )
                elif [k.sha256 for k in tenant.gateway.keys].count(key.sha256) > 1:
                    problems.append(f"tenant {name!r}: gateway.keys: {key.sha256[:8]}... is listed twice")
        if problems:
            raise ValueError("; ".join(dict.fromkeys(problems)))
        return self

    @classmethod
    def parse(cls, data: Any, *, source: str | None = None) -> TenantsConfig:
        """Validate ``data``; a mistake raises ``TenantConfigError`` naming the tenant, the field and ``source``."""
        if data is None:
            data = {}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise TenantConfigError(_problems(exc), source=source) from None

    @classmethod
    def from_file(cls, path: Path) -> TenantsConfig:
        """Read and validate the YAML file (JSON is YAML too)."""
        source = f"LLMOPS_TENANTS_FILE ({path})"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise TenantConfigError([f"cannot be read: {exc.strerror}"], source=source) from None
        except yaml.YAMLError as exc:
            raise TenantConfigError([f"not YAML: {exc}"], source=source) from None
        return cls.parse(data, source=source)

    # What each stage reads (the accessors): a tenant not declared gets every default.

    def tenant(self, name: str) -> Tenant:
        """The tenant's settings (all defaults for a tenant not declared)."""
        return self.tenants.get(name) or Tenant()

    def request_tenants(self) -> list[str]:
        """Topics and preprocess: the tenants with a request topic of their own."""
        return [name for name, tenant in self.tenants.items() if tenant.request_topic]

    def reply_topics(self, name: str) -> list[str] | None:
        """Preprocess: the tenant's reply-topic globs, else the defaults; None when neither is set."""
        own = self.tenant(name).reply_topics
        return own if own is not None else self.default_reply_topics

    def quota(self, name: str) -> QuotaPart:
        """Preprocess: the tenant's quotas."""
        return self.tenant(name).quota

    def typo_correction(self, name: str) -> bool | None:
        """Preprocess: the tenant's typo switch (None: the service setting)."""
        return self.tenant(name).preprocess.typo_correction

    def template(self, name: str) -> str | None:
        """Grounding (and the gateway's ``/v1/templates``): the tenant's pinned template."""
        return self.tenant(name).grounding.template

    def templates(self) -> dict[str, str]:
        """Grounding: every pinned template, by tenant."""
        return {n: t.grounding.template for n, t in self.tenants.items() if t.grounding.template is not None}

    def cache(self, name: str) -> CacheOverrides:
        """Safety's cache lookups: the tenant's overrides."""
        return self.tenant(name).cache

    def cache_overrides(self) -> dict[str, CacheOverrides]:
        """Every tenant's cache overrides that set anything."""
        return {n: t.cache for n, t in self.tenants.items() if t.cache.model_fields_set}

    def models(self, name: str) -> list[str]:
        """The gateway: the models and aliases the tenant may name (empty: every one the registry allows it)."""
        return self.tenant(name).models

    def api_keys(self) -> list[tuple[str, ApiKey]]:
        """The gateway: every key, with its tenant."""
        return [(n, key) for n, t in self.tenants.items() for key in t.gateway.keys]

    def explicit(self) -> dict[str, Any]:
        """What was set (defaults left out), JSON-shaped: the form sources are merged in."""
        explicit: dict[str, Any] = json.loads(self.model_dump_json(exclude_unset=True))
        return explicit


def _problems(exc: ValidationError) -> list[str]:
    """One line per error: the tenant and field, then what is wrong."""
    problems = []
    for error in exc.errors(include_url=False):
        path = tuple(error["loc"])
        if error["type"] == "value_error" and len(path) <= 1:
            problems.append(str(error["ctx"]["error"]))  # the validator's own message names tenant and field
            continue
        what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        if error["type"] not in {"extra_forbidden", "missing"}:
            what += f" (got {json.dumps(error['input'], default=str)[:80]})"
        problems.append(f"{field_label(path)}: {what}")
    return problems
