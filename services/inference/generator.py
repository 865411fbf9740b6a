"""The inference stage's work: pick the engine for the request's model and generate, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from services.inference.engine import ContextOverflowError, Generation, LlamaEngine
from services.inference.params import InvalidParamsError, resolve_params
from services.inference.worker_metrics import InferenceMetrics
from shared.contracts.envelope import Chunk, Completion, Envelope, ErrorInfo
from shared.contracts.errors import PipelineError
from shared.models.model_store import ModelIntegrityError, ModelMissingError, ensure_local, verified_path
from shared.models.registry import ModelEntry, ModelRegistry, UnknownModelError
from shared.runtime.logging import get_logger

__all__ = ["ChunkSink", "Generator", "chunk_envelope"]

EngineFactory = Callable[..., LlamaEngine]
#: Publishes one streamed piece (a ``kind="chunk"`` envelope) and waits for the broker's ack.
ChunkSink = Callable[[Envelope], Awaitable[None]]
T = TypeVar("T")


def chunk_envelope(env: Envelope, seq: int, text: str) -> Envelope:
    """A streamed piece: the routing fields and the safety section; the first also what the output checks need.

    Postprocess checks streamed text against the prompt (the system prompt and poisoned documents must not
    leak): the first piece carries ``grounding`` and ``prepared`` (without the embedding) for that, once per
    stream; later pieces only their text (issue 23: no piece carried them, and the leak checks never ran).
    """
    first = seq == 0
    return Envelope(
        request_id=env.request_id,
        conversation_id=env.conversation_id,
        tenant=env.tenant,
        reply_to=env.reply_to,
        deadline=env.deadline,
        kind="chunk",
        request=None,
        prepared=env.prepared.model_copy(update={"embedding": None}) if first and env.prepared else None,
        grounding=env.grounding if first else None,
        safety=env.safety,
        chunk=Chunk(seq=seq, text=text),
    )


class Generator:
    """Serves requests with one resident model per process.

    A request for another registry model swaps the resident model (one at a time, so
    memory stays bounded); generation runs in a worker thread under a lock, so the
    event loop keeps heart-beating (and publishing streamed chunks) while the model works.

    Example:
        >>> gen = Generator(ModelRegistry.load(), models_dir, engine_options={"n_gpu_layers": 0})
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
        engine_options: dict[str, Any] | None = None,
        warm_up_tokens: int = 1,
        verify_sha256: bool = True,
        on_chunk: ChunkSink | None = None,
        metrics: InferenceMetrics | None = None,
        skip_generation: bool = False,
    ) -> None:
        self.registry = registry
        self.models_dir = models_dir
        self.model = registry.get(model).name
        self.engine_factory = engine_factory
        self.engine_options = engine_options or {}
        self.warm_up_tokens = warm_up_tokens
        self.verify_sha256 = verify_sha256
        self.on_chunk = on_chunk
        self.metrics = metrics
        self.skip_generation = skip_generation
        self.engine: LlamaEngine | None = None
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Future[Any]] = set()
        self._running = 0  # generations in flight on a concurrent engine
        self._idle = asyncio.Event()
        self._idle.set()
        self._cancel = threading.Event()
        self.log = get_logger("llmops.inference")

    def _load(self, model: str, warm_tokens: int) -> LlamaEngine:
        entry = self.registry.get(model)
        try:
            path = verified_path(entry, self.models_dir) if self.verify_sha256 else ensure_local(entry, self.models_dir)
        except (ModelMissingError, ModelIntegrityError) as exc:
            raise PipelineError("model_unavailable", str(exc), retriable=True) from exc
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        lora = entry.lora.path_in(self.models_dir) if entry.lora is not None else None
        engine = self.engine_factory(entry, path, lora_path=lora, **self.engine_options)
        engine.warm_up(tokens=warm_tokens)
        self.engine = engine
        self.log.info(
            "model.loaded",
            model=model,
            gpu=engine.offloaded_layers > 0,
            gpu_layers=engine.offloaded_layers,
            n_layers=engine.n_layers,
            n_ctx=engine.n_ctx,
            lora=entry.lora is not None,
            prompt_cache=engine.prompt_cache,
        )
        return engine

    def warm_up(self) -> None:
        """Load the start-up model (hash-checked) and generate a token; nothing when generation is skipped."""
        if self.skip_generation:
            self.log.warning("inference.skip_generation", reason="bench-only flag: every answer is empty")
            return
        self._load(self.model, self.warm_up_tokens)

    def _entry(self, env: Envelope) -> ModelEntry:
        assert env.prepared is not None  # noqa: S101 - checked by process
        try:
            entry = self.registry.get(env.prepared.model)
        except UnknownModelError as exc:
            raise PipelineError("unknown_model", str(exc)) from exc
        if not entry.allows(env.tenant):
            allowed = ", ".join(self.registry.names(tenant=env.tenant)) or "none"
            msg = f"tenant {env.tenant!r} may not use model {entry.name!r}; available to it: {allowed}"
            raise PipelineError("model_not_allowed", msg)
        return entry

    async def process(self, env: Envelope) -> Envelope:
        """Fill ``completion``; stream chunks first when the request asks for it."""
        if env.prepared is None or env.grounding is None:
            raise PipelineError("invalid_message", "inference needs the prepared and grounding sections")
        entry = self._entry(env)
        request = env.require_request()
        n_ctx = self.engine.n_ctx if self.engine is not None and self.engine.entry.name == entry.name else None
        try:
            params = resolve_params(
                request.params,
                entry,
                n_ctx=n_ctx or self.engine_options.get("n_ctx") or entry.n_ctx,
                request_id=env.request_id,
            )
        except InvalidParamsError as exc:
            raise PipelineError("invalid_params", str(exc)) from exc
        safety = env.safety
        messages = safety.messages if safety is not None and safety.messages is not None else env.grounding.messages
        prompt = safety.prompt if safety is not None and safety.prompt is not None else env.grounding.prompt
        deadline = env.deadline.timestamp() if env.deadline is not None else None
        if self.skip_generation:  # benchmarks only: the hops without the model
            skipped = Generation("", 0, 0, "stop", None, 0.0)
            return env.model_copy(update=self._result_sections(env, entry.name, skipped, 0))
        async with self._engine_for(entry.name) as engine:
            stream = self._start_stream(env) if request.stream and self.on_chunk is not None else None
            try:
                result: Generation = await self._in_thread(
                    lambda: engine.generate(
                        messages,
                        prompt,
                        params,
                        on_text=stream.push if stream is not None else None,
                        deadline=deadline,
                        cancel=self._cancel,
                    )
                )
            except ContextOverflowError as exc:
                raise PipelineError("prompt_too_long", str(exc)) from exc
            finally:
                if stream is not None:
                    await stream.close()
        return env.model_copy(update=self._result_sections(env, entry.name, result, engine.offloaded_layers))

    @contextlib.asynccontextmanager
    async def _engine_for(self, model: str) -> AsyncIterator[LlamaEngine]:
        """The engine of ``model``, held for one generation.

        A single-sequence engine is held under the lock: one generation at a time. A concurrent (batched)
        engine is shared by every generation in flight; swapping the model waits until they have all ended.
        """
        await self._lock.acquire()
        locked = True
        try:
            engine = self.engine
            if engine is None or engine.entry.name != model:
                await self._idle.wait()  # nothing generates on the engine about to be closed
                engine = await self._in_thread(self._load, model, 0)
            if not engine.concurrent:
                yield engine
                return
            self._running += 1
            self._idle.clear()
            self._lock.release()
            locked = False
            try:
                yield engine
            finally:
                self._running -= 1
                if self._running == 0:
                    self._idle.set()
        finally:
            if locked:
                self._lock.release()

    def _result_sections(self, env: Envelope, model: str, result: Generation, gpu_layers: int) -> dict[str, Any]:
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
            gpu_layers=gpu_layers,
            cached_tokens=result.cached_tokens,
        )
        if self.metrics is not None:
            self.metrics.observe(completion)
        update: dict[str, Any] = {"completion": completion}
        if result.finish_reason == "timeout":
            # The partial text still goes through postprocess (output checks); the error marks it partial.
            message = f"the deadline {env.deadline} passed after {result.tokens_out} tokens; the text is partial"
            update["error"] = ErrorInfo(code="timeout", message=message, stage="inference", retriable=True)
            self.log.warning("generation.timeout", tokens_out=result.tokens_out, request_id=env.request_id)
        return update

    def _start_stream(self, env: Envelope) -> _ChunkStream:
        assert self.on_chunk is not None  # noqa: S101 - only called with a sink
        return _ChunkStream(env, self.on_chunk, asyncio.get_running_loop())

    async def _in_thread(self, func: Callable[..., T], *args: object) -> T:
        # A cancelled handler must not free the model under a running thread: the thread's future
        # is shielded and remembered, and close() waits for it.
        future = asyncio.ensure_future(asyncio.to_thread(func, *args))
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return await asyncio.shield(future)

    async def close(self) -> None:
        """Stop the generations still running in their threads, wait for them, then free the resident model."""
        self._cancel.set()
        for future in list(self._inflight):
            with contextlib.suppress(Exception):
                await future
        if self.engine is not None:
            self.engine.close()
            self.engine = None


class _ChunkStream:
    """Carries pieces from the generating thread to the event loop and publishes them in order.

    Pieces that pile up while a publish is waiting for its ack go out together in the next
    chunk, so a slow broker delays the stream but never the model.
    """

    def __init__(self, env: Envelope, sink: ChunkSink, loop: asyncio.AbstractEventLoop) -> None:
        self.env = env
        self.sink = sink
        self.loop = loop
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.sent = 0
        self.task = loop.create_task(self._pump())

    def push(self, piece: str) -> None:
        """Called from the generating thread."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, piece)

    async def _pump(self) -> None:
        done = False
        while not done:
            piece = await self.queue.get()
            if piece is None:
                return
            while not self.queue.empty():
                more = self.queue.get_nowait()
                if more is None:
                    done = True
                    break
                piece += more
            await self.sink(chunk_envelope(self.env, self.sent, piece))
            self.sent += 1

    async def close(self) -> None:
        """Wait until every piece pushed so far is published (acknowledged)."""
        self.queue.put_nowait(None)
        await self.task
