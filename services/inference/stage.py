"""The inference stage: ``llmops.checked`` → ``llmops.generated`` (streamed chunks first, same key).

With ``parallel`` > 1 the batched engine decodes several sequences at once: each request starts as
soon as a sequence slot is free (``Delivery("concurrent")``), joining the ones decoding. With
exactly-once on, transactions cannot overlap, so the requests of a poll generate together and are
committed together instead (the service falls back to batches).
"""

from __future__ import annotations

import asyncio

from services.inference.batched_engine import BatchedLlamaEngine
from services.inference.engine import LlamaEngine, gpu_offload_supported, resolve_gpu_layers
from services.inference.generator import Generator
from services.inference.settings import InferenceSettings
from services.inference.worker_metrics import InferenceMetrics
from shared.contracts.envelope import Envelope
from shared.contracts.stage import Delivery, Output, Outputs, Stage, StageContext
from shared.contracts.topology import Role
from shared.models.registry import ModelRegistry
from shared.runtime.logging import get_logger

__all__ = ["InferenceStage", "engine_options", "generate_together"]


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


async def generate_together(generator: Generator, batch: list[Envelope]) -> list[Outputs | Exception]:
    """Every request of a batch generates at once (the batched engine decodes them together); outputs each."""
    results = await asyncio.gather(*(generator.process(env) for env in batch), return_exceptions=True)
    outputs: list[Outputs | Exception] = []
    for result in results:
        if isinstance(result, Envelope):
            outputs.append([Output.of(Role.GENERATED, result)])
        elif isinstance(result, Exception):
            outputs.append(result)
        else:
            raise result  # cancellation and the like end the batch, not one record
    return outputs


class InferenceStage(Stage):
    """Generates each answer with llama.cpp, streaming chunks as they come.

    Example:
        >>> stage = InferenceStage(InferenceSettings())
        >>> await stage.warm_up(service)  # loads and warms the model
        >>> (await stage.process([checked]))[0][-1].role
        <Role.GENERATED: 'generated'>

    """

    name = "inference"

    def __init__(self, settings: InferenceSettings) -> None:
        self.settings = settings
        self.log = get_logger("llmops.inference")
        if settings.parallel > 1:
            self.delivery = Delivery("concurrent", settings.parallel, settings.batch_timeout_ms)
        self._generator: Generator | None = None

    async def warm_up(self, context: StageContext) -> None:
        """Load and warm the model; streamed chunks go out through ``context`` as they are generated."""

        async def send_chunk(chunk: Envelope) -> None:
            # Same topic and key as the final message: postprocess sees the pieces first, in order.
            await context.emit(Output.of(Role.GENERATED, chunk))

        settings = self.settings
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
        self.log.info(
            "inference.gpu",
            gpu_build=gpu_offload_supported(),
            n_gpu_layers=settings.n_gpu_layers,
            main_gpu=settings.main_gpu,
            flash_attn=settings.flash_attn,
        )
        await asyncio.to_thread(generator.warm_up)
        self._generator = generator

    async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
        """Every request of the batch generates at once (a batch of one unless delivered in batches)."""
        if self._generator is None:
            msg = "inference: warm_up() was not awaited"
            raise RuntimeError(msg)
        return await generate_together(self._generator, batch)

    async def close(self) -> None:
        """Free the model."""
        if self._generator is not None:
            await self._generator.close()
