"""The gateway's ASGI app: OpenAI-compatible HTTP in, pipeline requests out, answers from this replica's reply topic.

Thin by design (DESIGN.md §4): auth and limits live in ``auth``, the wire format in
``protocol``, statistics in ``stats``; talking to Kafka is the client SDK's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.auth import Authenticator, Principal, RateLimiter
from services.gateway.lag import LagProbe
from services.gateway.protocol import ApiError, ChatCompletionRequest, answer_error, chunk_body, completion_body, sse
from services.gateway.settings import GatewaySettings
from services.gateway.stats import PipelineStats
from shared.client import LlmopsClient
from shared.components.registry import ModelRegistry, UnknownModelError
from shared.messaging.envelope import Envelope
from shared.messaging.logging import get_logger
from shared.stack.topics import ensure_topics

__all__ = ["Gateway", "create_app"]

_RETRY_CONNECT_S = 2.0


class _Metrics:
    """Prometheus metrics of one gateway (its own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "llmops_gateway_requests", "HTTP chat requests by status.", ["status", "stream"], registry=self.registry
        )
        self.latency = Histogram(
            "llmops_gateway_request_seconds",
            "Time to the answer (streams: to the last byte).",
            ["stream"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.stage = Histogram(
            "llmops_stage_seconds",
            "Stage time from the trail of the answers.",
            ["stage"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.tokens = Counter("llmops_gateway_tokens_out", "Tokens generated for answers.", registry=self.registry)


class Gateway:
    """What the routes share: settings, the SDK client, auth, limits, registry, stats and metrics."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.reply_topic = settings.reply_topic_name()
        self.client = LlmopsClient(settings.core, reply_to=self.reply_topic)
        self.auth = Authenticator(settings.load_auth())
        self.limiter = RateLimiter()
        self.registry = ModelRegistry.load(settings.core.registry_path, default=settings.core.default_model)
        self.stats = PipelineStats(settings.stats_window_s)
        self.metrics = _Metrics()
        self.lag = LagProbe(settings.core)
        self.log = get_logger("llmops.gateway")
        self._connector: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Connected to the broker and reading the reply topic."""
        return self.client.started

    async def start(self) -> None:
        """Connect in the background, retrying: the HTTP side answers (503) while the broker is away."""
        self._connector = asyncio.create_task(self._connect())

    async def _connect(self) -> None:
        while True:
            try:
                await ensure_topics(self.settings.core.kafka, [self.reply_topic])
                await self.client.start()
            except (KafkaError, OSError, RuntimeError) as exc:
                self.log.warning("gateway.broker_unavailable", error=f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    await self.client.stop()
                await asyncio.sleep(_RETRY_CONNECT_S)
            else:
                self.log.info("gateway.ready", reply_topic=self.reply_topic, keys=len(self.auth.config.keys))
                return

    async def stop(self) -> None:
        """Disconnect."""
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        await self.client.stop()
        await self.lag.stop()

    def authenticate(self, request: Request) -> Principal:
        """The caller's principal (``Authorization: Bearer <key>``); 401 otherwise."""
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                "Missing API key: send it as `Authorization: Bearer <key>`.",
                type_="authentication_error",
                code="missing_api_key",
            )
        principal = self.auth.authenticate(key.strip())
        if principal is None:
            raise ApiError(401, "Incorrect API key provided.", type_="authentication_error", code="invalid_api_key")
        return principal

    def check_rate(self, principal: Principal) -> None:
        """429 with ``Retry-After`` when the key is over its limit."""
        wait = self.limiter.acquire(principal.key_hash, principal.rate_limit)
        if wait > 0:
            raise ApiError(
                429,
                f"Rate limit reached for key {principal.key_name}: "
                f"{principal.rate_limit.requests_per_minute:g} requests per minute. Retry in {wait:.1f} s.",
                type_="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": RateLimiter.retry_after(wait)},
            )

    def resolve_model(self, principal: Principal, name: str | None) -> str:
        """The registry model a request is served by; 404 unknown, 403 not allowed for the tenant.

        A request naming no model gets the registry default, or the tenant's first model when
        the default is not one the tenant may use.
        """
        if name is None and principal.config.models and not principal.config.allows(self.registry.default):
            name = principal.config.models[0]
        try:
            model = self.registry.get(name).name
        except UnknownModelError as exc:
            raise ApiError(404, str(exc), code="model_not_found", param="model") from None
        if not principal.config.allows(model):
            raise ApiError(
                403,
                f"Tenant {principal.tenant!r} may not use model {model!r}.",
                type_="permission_error",
                code="model_not_allowed",
                param="model",
            )
        return model

    def build(self, principal: Principal, body: ChatCompletionRequest, model: str, timeout: float) -> Envelope:
        """The pipeline request for an HTTP request."""
        metadata = dict(body.metadata or {})
        template = body.template or principal.config.template
        if template:
            metadata["template"] = template
        if body.user:
            metadata["user"] = body.user
        return self.client.build(
            [m.to_chat() for m in body.messages],
            conversation_id=body.conversation_id,
            model=model,
            timeout=timeout,
            tenant=principal.tenant,
            stream=body.stream,
            metadata=metadata,
            **body.sampling(),
        )

    def unavailable(self, exc: BaseException | None = None) -> ApiError:
        """503: the broker cannot be reached."""
        if exc is not None:
            self.log.warning("gateway.send_failed", error=f"{type(exc).__name__}: {exc}")
        return ApiError(
            503,
            "The pipeline is unavailable (no broker connection); retry later.",
            type_="server_error",
            code="pipeline_unavailable",
            headers={"Retry-After": "2"},
        )

    def timed_out(self, timeout: float) -> ApiError:
        """504: no answer in time."""
        return ApiError(
            504, f"No answer from the pipeline within {timeout:g} s.", type_="timeout_error", code="timeout"
        )

    def observe(self, status: int, started: float, *, stream: bool, answer: Envelope | None = None) -> None:
        """Count a finished request in the stats and metrics."""
        elapsed = time.perf_counter() - started
        self.stats.record(status, elapsed * 1000, answer)
        self.metrics.requests.labels(str(status), str(stream).lower()).inc()
        self.metrics.latency.labels(str(stream).lower()).observe(elapsed)
        if answer is not None:
            for record in answer.trail:
                self.metrics.stage.labels(record.stage).observe(record.duration_ms / 1000)
            if answer.completion is not None:
                self.metrics.tokens.inc(answer.completion.tokens_out)


def _error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _playground() -> str:
    return files("services.gateway").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:  # noqa: C901, PLR0915 - the route table
    """The FastAPI app; the broker connection is made in its lifespan."""
    gw = Gateway(settings or GatewaySettings())
    page = _playground()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(title="llmops gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gw

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None  # noqa: PLR2004 - HTTP status
        return _error_response(ApiError(exc.status_code, str(exc.detail), code=code))

    @app.get("/", include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        status = 200 if gw.ready else 503
        return JSONResponse({"status": "ok" if gw.ready else "starting", "reply_topic": gw.reply_topic}, status)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return await healthz()

    @app.get("/livez", include_in_schema=False)
    async def livez() -> JSONResponse:
        return JSONResponse({"status": "alive"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def model_card(name: str) -> dict[str, Any]:
        entry = gw.registry.get(name)
        return {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "llmops",
            "default": name == gw.registry.default,
            "description": entry.description,
            "context_length": entry.n_ctx,
        }

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        principal = gw.authenticate(request)
        data = [model_card(name) for name in gw.registry.names() if principal.config.allows(name)]
        return JSONResponse({"object": "list", "data": data})

    @app.get("/v1/models/{name}")
    async def model(name: str, request: Request) -> JSONResponse:
        principal = gw.authenticate(request)
        if name not in gw.registry.models or not principal.config.allows(name):
            raise ApiError(404, f"The model {name!r} does not exist.", code="model_not_found", param="model")
        return JSONResponse(model_card(name))

    @app.get("/v1/templates")
    async def templates(request: Request) -> JSONResponse:
        principal = gw.authenticate(request)
        fixed = principal.config.template
        return JSONResponse({"data": [fixed] if fixed else gw.settings.templates, "tenant_fixed": bool(fixed)})

    @app.get("/v1/pipeline/stats")
    async def pipeline_stats(request: Request) -> JSONResponse:
        gw.authenticate(request)
        snapshot = gw.stats.snapshot()
        snapshot["lag"] = await gw.lag.measure() if gw.ready else {}
        snapshot["ready"] = gw.ready
        snapshot["reply_topic"] = gw.reply_topic
        return JSONResponse(snapshot)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        started = time.perf_counter()
        stream = False
        try:
            principal = gw.authenticate(request)
            gw.check_rate(principal)
            body = ChatCompletionRequest.parse(await request.body())
            stream = body.stream
            model = gw.resolve_model(principal, body.model)
            timeout = min(body.timeout or gw.settings.timeout_s, gw.settings.max_timeout_s)
            env = gw.build(principal, body, model, timeout)
            if not gw.ready:
                raise gw.unavailable()
            if stream:
                return await _stream(env, model, timeout, started, body)
            sent_at = time.perf_counter()
            answer = await _answer(env, timeout)
            pipeline_ms = (time.perf_counter() - sent_at) * 1000
        except ApiError as exc:
            gw.observe(exc.status, started, stream=stream)
            return _error_response(exc)
        gw.observe(200, started, stream=False, answer=answer)
        content = completion_body(answer, model, int(time.time()))
        total_ms = (time.perf_counter() - started) * 1000
        # What the gateway itself adds is the difference: total minus the wait for the pipeline.
        timing = f"gateway;dur={total_ms:.3f}, pipeline;dur={pipeline_ms:.3f}"
        return JSONResponse(content, headers={"Server-Timing": timing})

    async def _answer(env: Envelope, timeout: float) -> Envelope:
        try:
            fut = await gw.client.send(env)
        except (KafkaError, RuntimeError) as exc:
            raise gw.unavailable(exc) from None
        try:
            answer = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            gw.client.forget(env.request_id)
            raise gw.timed_out(timeout) from None
        error = answer_error(answer)
        if error is not None:
            raise error
        return answer

    async def _stream(
        env: Envelope, model: str, timeout: float, started: float, body: ChatCompletionRequest
    ) -> StreamingResponse:
        pieces = gw.client.iter_answer(env, timeout=timeout)
        try:
            first = await anext(pieces)
        except (KafkaError, RuntimeError) as exc:
            raise gw.unavailable(exc) from None
        except TimeoutError:
            raise gw.timed_out(timeout) from None
        if first.kind != "chunk":
            error = answer_error(first)
            if error is not None:  # nothing sent yet: the error gets its real status code
                await pieces.aclose()
                raise error
        usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _events(env.request_id, model, first, pieces, usage=usage, started=started, timeout=timeout)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    async def _events(
        request_id: str,
        model: str,
        first: Envelope,
        pieces: AsyncGenerator[Envelope, None],
        *,
        usage: bool,
        started: float,
        timeout: float,
    ) -> AsyncIterator[bytes]:
        created = int(time.time())
        sent: list[str] = []
        status, final = 200, None
        try:
            yield sse(chunk_body(request_id, model, created, {"role": "assistant", "content": ""}))
            piece: Envelope | None = first
            while piece is not None:
                if piece.kind == "chunk" and piece.chunk is not None:
                    sent.append(piece.chunk.text)
                    yield sse(chunk_body(request_id, model, created, {"content": piece.chunk.text}))
                else:
                    final = piece
                    break
                try:
                    piece = await anext(pieces)
                except StopAsyncIteration:
                    piece = None
                except TimeoutError:
                    status = 504
                    yield sse(gw.timed_out(timeout).body())
                    piece = None
            if final is not None:
                error = answer_error(final)
                if error is not None:
                    status = error.status
                    yield sse(error.body())
                else:
                    rest = _remaining_text(final, "".join(sent))
                    if rest:
                        yield sse(chunk_body(request_id, model, created, {"content": rest}))
                    yield sse(chunk_body(request_id, model, created, {}, final=final, usage=usage))
            yield sse("[DONE]")
        finally:
            await pieces.aclose()
            gw.observe(status, started, stream=True, answer=final)

    return app


def _remaining_text(final: Envelope, streamed: str) -> str:
    """What the final answer adds to the streamed text: all of it when nothing streamed.

    Postprocess may polish the final text (trim a leaked token, an invented next turn); when
    the streamed text is no longer a prefix of it, the stream already said what it says.
    """
    text = final.response.text if final.response else ""
    if not streamed:
        return text
    return text[len(streamed) :] if text.startswith(streamed) else ""


def app_factory() -> Any:
    """``uvicorn --factory services.gateway.app:app_factory``."""
    return create_app()
