"""Postprocess service: serves ``PostprocessStage`` (``services/postprocess/stage.py``)."""

from __future__ import annotations

from services.postprocess.settings import PostprocessSettings
from services.postprocess.stage import PostprocessStage
from shared.runtime.service import StageService

__all__ = ["create_service"]


def create_service(settings: PostprocessSettings | None = None) -> StageService:
    """The postprocess service; the output guards are built in its start-up."""
    settings = settings or PostprocessSettings()
    return StageService(PostprocessStage(settings), settings)
