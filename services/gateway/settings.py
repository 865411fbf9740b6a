"""Gateway settings (``LLMOPS_GATEWAY_*``)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.gateway.auth import AuthConfig
from shared.models.registry import ModelRegistry
from shared.runtime.secrets import DefaultSecretError, default_api_key_hashes
from shared.runtime.settings import CoreSettings
from shared.tenants.checks import check_registry

__all__ = ["GatewaySettings"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DEV_HINT = "replace it (python -m services.gateway.auth), or LLMOPS_DEV_MODE=true on a development machine only"


class GatewaySettings(BaseSettings):
    """Where the gateway listens, how it authenticates, how long it waits for the pipeline."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_GATEWAY_", env_file=".env", extra="ignore")

    core: CoreSettings = Field(default_factory=CoreSettings)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535, description="HTTP port of the API and the playground.")
    replica: str = Field(
        default_factory=socket.gethostname,
        description="Replica id; names this replica's reply topic, so keep it stable across restarts.",
    )
    reply_topic: str | None = Field(
        default=None, description="This replica's reply topic; <prefix>responses.gateway-<replica> when absent."
    )
    tenant_topics: bool = Field(
        default=False,
        description="Send each tenant's requests to its own topic (llmops.requests.<tenant>); needed when "
        "preprocess takes tenants from topics (LLMOPS_PREPROCESS_TENANT_FROM_TOPIC).",
    )
    auth_file: Path | None = Field(default=None, description="YAML file of tenants and hashed API keys.")
    auth: AuthConfig | None = Field(default=None, description="The same as JSON (merged with the file's).")
    timeout_s: float = Field(default=120.0, gt=0, description="Longest wait for an answer (then 504).")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body read (then 413); the pipeline's message limit."
    )
    max_timeout_s: float = Field(default=600.0, gt=0, description="Cap on a request's own `timeout` field.")
    templates: list[str] = Field(default_factory=lambda: ["default"], description="Template ids offered.")
    shutdown_timeout_s: float = Field(default=30.0, gt=0, description="On SIGTERM, how long open requests may finish.")
    stats_window_s: float = Field(default=60.0, gt=0, description="Window of the pipeline stats view.")

    def reply_topic_name(self) -> str:
        """The reply topic of this replica."""
        if self.reply_topic:
            return self.reply_topic
        replica = _UNSAFE.sub("-", self.replica)[:200] or "gateway"
        return self.core.topics.name(f"responses.gateway-{replica}")

    def load_auth(self) -> AuthConfig:
        """The gateway's part of the tenant configuration, the file's and ``LLMOPS_GATEWAY_AUTH``'s merged in.

        Checked at start: a field the sources set differently, or a tenant's model the registry does not
        open to it, raises ``TenantConfigError`` naming the tenant and the field.
        """
        old = AuthConfig.from_yaml(self.auth_file) if self.auth_file else AuthConfig()
        if self.auth is not None:
            old = old.merged(self.auth)
        where = " + ".join(
            name
            for name, set_ in (("LLMOPS_GATEWAY_AUTH_FILE", self.auth_file), ("LLMOPS_GATEWAY_AUTH", self.auth))
            if set_
        )
        tenants = self.core.tenant_config(*old.as_sources(where or "LLMOPS_GATEWAY_AUTH"))
        check_registry(tenants, ModelRegistry.load(self.core.registry_path, default=self.core.default_model))
        config = AuthConfig.from_tenants(tenants)
        if not self.core.dev_mode:
            # A key anyone could guess (a documented example, "admin", ...) stops the gateway at start.
            weak = default_api_key_hashes()
            named = [f"{key.name or '(unnamed)'} of tenant {key.tenant}" for key in config.keys if key.sha256 in weak]
            if named:
                msg = f"gateway API keys {', '.join(named)}: a known default key; {_DEV_HINT}"
                raise DefaultSecretError(msg)
        return config
