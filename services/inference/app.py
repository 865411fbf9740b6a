"""Inference service: serves ``InferenceStage`` (``services/inference/stage.py``)."""

from __future__ import annotations

from services.inference.settings import InferenceSettings
from services.inference.stage import InferenceStage
from shared.runtime.service import StageService

__all__ = ["create_service"]


def create_service(settings: InferenceSettings | None = None) -> StageService:
    """The inference service; the model loads (and is warmed) in its start-up, before it consumes."""
    settings = settings or InferenceSettings()
    return StageService(InferenceStage(settings), settings)
