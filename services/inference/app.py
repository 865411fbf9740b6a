"""Inference service wiring: ``llmops.checked`` → ``llmops.generated``."""

from __future__ import annotations

import asyncio

from services.inference.engine import resolve_gpu_layers
from services.inference.generator import Generator
from services.inference.settings import InferenceSettings
from shared.components.registry import ModelRegistry
from shared.messaging.service import ProcessFn, StageService

__all__ = ["create_service"]


def create_service(settings: InferenceSettings | None = None) -> StageService:
    """Build the service; the model loads (and is warmed) in its start-up, before it consumes."""
    settings = settings or InferenceSettings()
    topics = settings.core.topics
    service = StageService("inference", settings, input_topic=topics.checked)

    async def warm_up() -> ProcessFn:
        registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
        generator = Generator(
            registry,
            settings.core.models_dir,
            model=settings.model,
            engine_options={
                "n_gpu_layers": resolve_gpu_layers(settings.n_gpu_layers),
                "n_ctx": settings.n_ctx,
                "n_threads": settings.n_threads,
                "n_batch": settings.n_batch,
            },
            warm_up_tokens=settings.warm_up_tokens,
        )
        await asyncio.to_thread(generator.warm_up)

        service.on_shutdown(generator.close)
        return generator.process

    service.bind(warm_up=warm_up, route=lambda _env: topics.generated)
    return service
