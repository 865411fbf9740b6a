"""The inference stage's work: pick the engine for the request's model and generate, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from services.inference.engine import LlamaEngine
from shared.components.model_store import ModelIntegrityError, ModelMissingError, ensure_local
from shared.components.registry import ModelRegistry, UnknownModelError
from shared.messaging.envelope import Completion, Envelope
from shared.messaging.errors import PipelineError
from shared.messaging.logging import get_logger

__all__ = ["Generator"]

EngineFactory = Callable[..., LlamaEngine]
T = TypeVar("T")


class Generator:
    """Serves requests with one resident model per process.

    A request for another registry model swaps the resident model (one at a time, so
    memory stays bounded); generation runs in a worker thread under a lock, so the
    event loop keeps heart-beating while the model works.

    Example:
        >>> gen = Generator(ModelRegistry.load(), models_dir, n_gpu_layers=0)
        >>> gen.warm_up()
        >>> (await gen.process(envelope)).completion.text
        'The capital of France is Paris.'

    """

    def __init__(
        self,
        registry: ModelRegistry,
        models_dir: Path,
        *,
        model: str | None = None,
        engine_factory: EngineFactory = LlamaEngine,
        engine_options: dict[str, object] | None = None,
        warm_up_tokens: int = 1,
    ) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.model = registry.get(model).name
        self.engine_factory = engine_factory
        self.engine_options = engine_options or {}
        self.warm_up_tokens = warm_up_tokens
        self.engine: LlamaEngine | None = None
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[Any] | None = None
        self.log = get_logger("llmops.inference")

    def _load(self, model: str, warm_tokens: int) -> LlamaEngine:
        entry = self.registry.get(model)
        try:
            path = ensure_local(entry, self.models_dir)
        except (ModelMissingError, ModelIntegrityError) as exc:
            raise PipelineError("model_unavailable", str(exc), retriable=True) from exc
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        engine = self.engine_factory(entry, path, **self.engine_options)
        engine.warm_up(tokens=warm_tokens)
        self.engine = engine
        self.log.info("model.loaded", model=model, gpu_layers=engine.offloaded_layers, n_ctx=engine.n_ctx)
        return engine

    def warm_up(self) -> None:
        """Load the start-up model and generate a token."""
        self._load(self.model, self.warm_up_tokens)

    async def process(self, env: Envelope) -> Envelope:
        """Fill ``completion``."""
        if env.prepared is None or env.grounding is None:
            raise PipelineError("invalid_message", "inference needs the prepared and grounding sections")
        try:
            model = self.registry.get(env.prepared.model).name
        except UnknownModelError as exc:
            raise PipelineError("unknown_model", str(exc)) from exc
        safety = env.safety
        messages = safety.messages if safety is not None and safety.messages is not None else env.grounding.messages
        prompt = safety.prompt if safety is not None and safety.prompt is not None else env.grounding.prompt
        params = env.require_request().params
        async with self._lock:
            engine = self.engine
            if engine is None or engine.entry.name != model:
                engine = await self._in_thread(self._load, model, 0)
            result = await self._in_thread(engine.generate, messages, prompt, params)
        # Decode speed: tokens after the first over the time after the first (prompt processing excluded).
        decode_s = (result.generation_ms - (result.time_to_first_token_ms or 0.0)) / 1000
        tokens_per_s = round((result.tokens_out - 1) / decode_s, 2) if result.tokens_out > 1 and decode_s > 0 else None
        completion = Completion(
            text=result.text,
            model=model,
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
            finish_reason=result.finish_reason,
            time_to_first_token_ms=result.time_to_first_token_ms,
            generation_ms=result.generation_ms,
            tokens_per_s=tokens_per_s,
            gpu_layers=engine.offloaded_layers,
        )
        return env.model_copy(update={"completion": completion})

    async def _in_thread(self, func: Callable[..., T], *args: object) -> T:
        # A cancelled handler must not free the model under a running thread: the thread's future
        # is shielded and remembered, and close() waits for it.
        self._inflight = asyncio.ensure_future(asyncio.to_thread(func, *args))
        return await asyncio.shield(self._inflight)

    async def close(self) -> None:
        """Wait for a generation still running in its thread, then free the resident model."""
        if self._inflight is not None and not self._inflight.done():
            with contextlib.suppress(Exception):
                await self._inflight
        if self.engine is not None:
            self.engine.close()
            self.engine = None
