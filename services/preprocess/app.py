"""Preprocess service wiring: ``llmops.requests`` → ``llmops.preprocessed``.

Records are consumed in batches (whatever one poll returns, up to ``batch_max_records``):
each request is cleaned on its own and the batch is embedded in one model call. A poll
returns as soon as anything is there, so a lone request does not wait for company.
"""

from __future__ import annotations

import asyncio

from services.preprocess.intake import parse_request
from services.preprocess.language import LanguageDetector
from services.preprocess.policy import TenantPolicyFile
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from services.preprocess.typos import TypoCorrector
from shared.components.embedder import Embedder
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import Envelope
from shared.messaging.service import StageService
from shared.messaging.stage import BatchProcessFn

__all__ = ["build_preprocessor", "create_service"]


def build_preprocessor(settings: PreprocessSettings) -> Preprocessor:
    """The stage logic as the settings describe it (cheap: nothing heavy loads until ``warm_up``)."""
    registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
    return Preprocessor(
        registry,
        settings.core.models_dir,
        max_prompt_chars=settings.max_prompt_chars,
        typos=TypoCorrector(min_length=settings.typo_min_length, min_ratio=settings.typo_min_ratio),
        detector=LanguageDetector(
            min_confidence=settings.language_min_confidence, candidates=settings.language_candidates
        ),
        embedder=Embedder(threads=settings.embed_threads) if settings.embed else None,
        policy=TenantPolicyFile.load(settings.tenants_path),
        typo_correction=settings.typo_correction,
    )


def create_service(
    settings: PreprocessSettings | None = None, *, preprocessor: Preprocessor | None = None
) -> StageService:
    """Build the service; heavy state (tokenizers, dictionary, detector, embedder) loads in its start-up.

    A ``preprocessor`` given here is used instead of one built from the settings (tests share a warm one).
    """
    settings = settings or PreprocessSettings()
    topics = settings.core.topics
    service = StageService("preprocess", settings, input_topic=topics.requests, parse=parse_request)

    async def warm_up() -> BatchProcessFn:
        pre = preprocessor or build_preprocessor(settings)
        await asyncio.to_thread(pre.warm_up)

        async def process(envs: list[Envelope]) -> list[Envelope | Exception]:
            # Off the event loop: heartbeats and publishing go on while the CPU works.
            return await asyncio.to_thread(pre.process_batch, envs)

        return process

    service.bind_batch(
        warm_up=warm_up,
        route=lambda _env: topics.preprocessed,
        max_records=settings.batch_max_records,
        batch_timeout_ms=settings.batch_timeout_ms,
    )
    return service
