"""Grounding service: serves ``GroundingStage`` (``services/grounding/stage.py``)."""

from __future__ import annotations

from services.grounding.settings import GroundingSettings
from services.grounding.stage import GroundingStage
from shared.runtime.service import StageService

__all__ = ["create_service"]


def create_service(settings: GroundingSettings | None = None) -> StageService:
    """The grounding service; its models and the knowledge store load in its start-up."""
    settings = settings or GroundingSettings()
    return StageService(GroundingStage(settings), settings)
