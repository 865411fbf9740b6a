"""Preprocess settings (``LLMOPS_PREPROCESS_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.messaging.settings import StageSettings

__all__ = ["PreprocessSettings"]


class PreprocessSettings(StageSettings):
    """Settings of the preprocess service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_PREPROCESS_", env_file=".env", extra="ignore")

    max_prompt_chars: int = 200_000
