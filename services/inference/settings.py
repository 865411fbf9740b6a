"""Inference settings (``LLMOPS_INFERENCE_*``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.messaging.settings import StageSettings

__all__ = ["InferenceSettings"]


class InferenceSettings(StageSettings):
    """Settings of the inference service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_INFERENCE_", env_file=".env", extra="ignore")

    model: str | None = Field(default=None, description="Model loaded at start; the registry default when absent.")
    n_gpu_layers: int | Literal["auto"] = Field(
        default="auto", description="Layers offloaded to the GPU; auto = all when the build supports a GPU, else 0."
    )
    n_ctx: int | None = Field(default=None, ge=256, description="Context size; the registry's when absent.")
    n_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    n_batch: int = Field(default=512, ge=1)
    warm_up_tokens: int = Field(
        default=1, ge=0, description="Tokens generated at start so the first request is not cold."
    )
