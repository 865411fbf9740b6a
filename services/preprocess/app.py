"""Preprocess service wiring: ``llmops.requests`` → ``llmops.preprocessed``."""

from __future__ import annotations

import asyncio

from services.preprocess.intake import parse_request
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import Envelope
from shared.messaging.service import ProcessFn, StageService

__all__ = ["create_service"]


def create_service(settings: PreprocessSettings | None = None) -> StageService:
    """Build the service; heavy state (tokenizers) loads in its start-up."""
    settings = settings or PreprocessSettings()
    topics = settings.core.topics
    service = StageService("preprocess", settings, input_topic=topics.requests, parse=parse_request)

    async def warm_up() -> ProcessFn:
        registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
        pre = Preprocessor(registry, settings.core.models_dir, max_prompt_chars=settings.max_prompt_chars)
        await asyncio.to_thread(pre.warm_up)

        async def process(env: Envelope) -> Envelope:
            return pre.process(env)

        return process

    service.bind(warm_up=warm_up, route=lambda _env: topics.preprocessed)
    return service
