"""The gateway's ASGI app: OpenAI-compatible HTTP in, pipeline requests out, answers from this replica's reply topic.

Thin by design (DESIGN.md §4): shared state in ``gateway``, auth and limits in ``auth``, the wire format in
``protocol``, statistics in ``stats``; talking to Kafka is the client SDK's job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.gateway import Gateway
from services.gateway.protocol import ApiError, ChatCompletionRequest, answer_error, chunk_body, completion_body, sse
from services.gateway.settings import GatewaySettings
from shared.messaging.envelope import Envelope

__all__ = ["app_factory", "create_app", "read_body"]


def _error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over ``limit`` bytes (issue 23).

    A declared ``Content-Length`` over the limit is refused before anything is read; a body without
    one (chunked) is read only up to the limit. Reading the whole body first let one client hold
    the gateway's memory with a body of any size.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {limit} bytes.", code="request_too_large")


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
        alias = gw.registry.aliases.get(name)
        card = {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "llmops",
            "default": name == gw.registry.default,
        }
        if alias is None:
            entry = gw.registry.get(name)
            return card | {"description": entry.description, "context_length": entry.n_ctx}
        # An alias promises no more context than its smallest variant; the weights are its base split.
        return card | {
            "description": alias.description,
            "context_length": min(gw.registry.models[v.model].n_ctx for v in alias.variants),
            "variants": [v.model_dump() for v in alias.variants],
        }

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        principal = gw.authenticate(request)
        names = gw.registry.names(aliases=True)
        data = [model_card(name) for name in names if principal.config.allows(name)]
        return JSONResponse({"object": "list", "data": data})

    @app.get("/v1/models/{name}")
    async def model(name: str, request: Request) -> JSONResponse:
        principal = gw.authenticate(request)
        known = name in gw.registry.names(aliases=True)
        if not known or not principal.config.allows(name):
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
            body = ChatCompletionRequest.parse(await read_body(request, gw.settings.max_body_bytes))
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
