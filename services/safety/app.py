"""Safety service: serves ``SafetyStage`` (``services/safety/stage.py``)."""

from __future__ import annotations

from services.safety.settings import SafetySettings
from services.safety.stage import SafetyStage
from shared.cache import CacheSettings
from shared.runtime.service import StageService

__all__ = ["create_service"]


def create_service(settings: SafetySettings | None = None, *, cache: CacheSettings | None = None) -> StageService:
    """The safety service; the guards are built in its start-up."""
    settings = settings or SafetySettings()
    return StageService(SafetyStage(settings, cache=cache), settings)
