"""Postprocess settings (``LLMOPS_POSTPROCESS_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.messaging.settings import StageSettings

__all__ = ["PostprocessSettings"]


class PostprocessSettings(StageSettings):
    """Settings of the postprocess service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_POSTPROCESS_", env_file=".env", extra="ignore")

    publish_turns: bool = True
