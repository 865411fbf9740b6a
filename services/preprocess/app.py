"""Preprocess service: serves ``PreprocessStage`` (``services/preprocess/stage.py``)."""

from __future__ import annotations

from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from services.preprocess.stage import PreprocessStage
from shared.runtime.service import StageService

__all__ = ["create_service"]


def create_service(
    settings: PreprocessSettings | None = None, *, preprocessor: Preprocessor | None = None
) -> StageService:
    """The preprocess service; tokenizers, dictionary, detector and embedder load in its start-up.

    A ``preprocessor`` given here is used instead of one built from the settings (tests share a warm one).
    """
    settings = settings or PreprocessSettings()
    return StageService(PreprocessStage(settings, preprocessor=preprocessor), settings)
