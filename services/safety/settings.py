"""Safety settings (``LLMOPS_SAFETY_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.messaging.settings import StageSettings

__all__ = ["SafetySettings"]


class SafetySettings(StageSettings):
    """Settings of the safety service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_SAFETY_", env_file=".env", extra="ignore")

    policy_path: Path | None = Field(default=None, description="Policy file; the packaged policy.yaml when absent.")
