"""Postprocess settings (``LLMOPS_POSTPROCESS_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.runtime.settings import StageSettings

__all__ = ["PostprocessSettings"]


class PostprocessSettings(StageSettings):
    """Settings of the postprocess service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_POSTPROCESS_", env_file=".env", extra="ignore")

    publish_turns: bool = True
    publish_usage: bool = Field(default=True, description="Write each answer's token accounting to llmops.usage.")
    policy_path: Path | None = Field(
        default=None,
        description="Guard policy file (the safety stage's format; postprocess reads each tenant's `output` "
        "section); shared/guards/policy.yaml when absent.",
    )
    max_streams: int = Field(
        default=10_000, ge=1, description="Streamed answers buffered at once per replica; the oldest is dropped."
    )
