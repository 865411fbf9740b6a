"""Grounding settings (``LLMOPS_GROUNDING_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.messaging.settings import StageSettings

__all__ = ["GroundingSettings"]


class GroundingSettings(StageSettings):
    """Settings of the grounding service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_GROUNDING_", env_file=".env", extra="ignore")

    memory_turns: int = Field(default=4, ge=0, description="Earlier turns of the conversation added to the prompt.")
    memory_conversations: int = Field(default=10_000, ge=1, description="Conversations kept in memory (LRU).")
    templates_dir: Path | None = Field(default=None, description="Template folder; the packaged one when absent.")
    default_template: str = "default"
