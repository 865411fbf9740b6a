"""Inference service wiring: ``llmops.checked`` → ``llmops.generated`` (streamed chunks first, same key)."""

from __future__ import annotations

import asyncio
import functools

from services.inference.batched_engine import BatchedLlamaEngine
from services.inference.engine import LlamaEngine, gpu_offload_supported, resolve_gpu_layers
from services.inference.generator import Generator
from services.inference.metrics import InferenceMetrics
from services.inference.settings import InferenceSettings
from shared.components.registry import ModelRegistry
from shared.messaging.envelope import Envelope
from shared.messaging.service import StageService
from shared.messaging.stage import BatchProcessFn, ProcessFn, envelope_headers
from shared.messaging.transactions import outside_record

__all__ = ["create_service", "engine_options", "generate_together"]


def engine_options(settings: InferenceSettings) -> dict[str, object]:
    """``LlamaEngine`` (``BatchedLlamaEngine`` when ``parallel`` > 1) keyword arguments from the settings."""
    batched: dict[str, object] = {}
    if settings.parallel > 1:
        batched = {
            "parallel": settings.parallel,
            "prefill_chunk": settings.prefill_chunk,
            "kv_cache_limit_bytes": settings.kv_cache_mb << 20 if settings.kv_cache_mb else None,
        }
    return batched | {
        "n_gpu_layers": resolve_gpu_layers(settings.n_gpu_layers),
        "main_gpu": settings.main_gpu,
        "tensor_split": settings.tensor_split,
        "flash_attn": settings.flash_attn,
        "n_ctx": settings.n_ctx,
        "n_threads": settings.n_threads,
        "n_batch": settings.n_batch,
        "n_ubatch": settings.n_ubatch,
        "prompt_cache": settings.prompt_cache,
        "prompt_cache_bytes": settings.prompt_cache_mb << 20,
    }


async def generate_together(generator: Generator, envs: list[Envelope]) -> list[Envelope | Exception]:
    """Every request of a poll generates at once (the batched engine decodes them together); one result each."""
    results = await asyncio.gather(*(generator.process(env) for env in envs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # cancellation and the like end the batch, not one record
    return [r for r in results if isinstance(r, Envelope | Exception)]


def create_service(settings: InferenceSettings | None = None) -> StageService:
    """Build the service; the model loads (and is warmed) in its start-up, before it consumes."""
    settings = settings or InferenceSettings()
    topics = settings.core.topics
    service = StageService("inference", settings, input_topic=topics.checked)

    async def send_chunk(chunk: Envelope) -> None:
        # Same topic and key as the final message: postprocess sees the pieces first, in order. Published as they
        # come, also with exactly-once on (then each in a small transaction of its own), not with the final.
        with outside_record():
            await service.runner.send(
                topics.generated, chunk.to_bytes(), key=chunk.conversation_id.encode(), headers=envelope_headers(chunk)
            )

    async def start_generator() -> Generator:
        metrics = InferenceMetrics()
        if settings.metrics_port:
            metrics.serve(settings.health_host, settings.metrics_port)
        registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
        generator = Generator(
            registry,
            settings.core.models_dir,
            model=settings.model,
            engine_factory=BatchedLlamaEngine if settings.parallel > 1 else LlamaEngine,
            engine_options=engine_options(settings),
            warm_up_tokens=settings.warm_up_tokens,
            verify_sha256=settings.verify_sha256,
            on_chunk=send_chunk,
            metrics=metrics,
            skip_generation=settings.bench_skip_generation,
        )
        service.log.info(
            "inference.gpu",
            gpu_build=gpu_offload_supported(),
            n_gpu_layers=settings.n_gpu_layers,
            main_gpu=settings.main_gpu,
            flash_attn=settings.flash_attn,
        )
        await asyncio.to_thread(generator.warm_up)

        service.on_shutdown(generator.close)
        return generator

    async def warm_up() -> ProcessFn:
        return (await start_generator()).process

    if settings.parallel == 1:
        service.bind(warm_up=warm_up, route=lambda _env: topics.generated)
        return service
    if not settings.core.kafka.exactly_once:
        # Each request starts as soon as a sequence slot is free: it joins the ones decoding.
        service.bind_concurrent(
            warm_up=warm_up,
            route=lambda _env: topics.generated,
            max_in_flight=settings.parallel,
            batch_timeout_ms=settings.batch_timeout_ms,
        )
        return service
    # Exactly-once: one transaction at a time, so the requests of a poll generate together and commit together.

    async def warm_up_batch() -> BatchProcessFn:
        return functools.partial(generate_together, await start_generator())

    service.bind_batch(
        warm_up=warm_up_batch,
        route=lambda _env: topics.generated,
        max_records=settings.parallel,
        batch_timeout_ms=settings.batch_timeout_ms,
    )
    return service
