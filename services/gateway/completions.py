"""``POST /v1/chat/completions``: one pipeline request per HTTP request, answered whole or streamed as SSE.

The route in ``app.py`` calls ``Completions.handle``; authentication, limits and the envelope come
from ``Gateway``, the wire format from ``protocol``, the Kafka round trip from the client SDK.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from services.gateway.gateway import Gateway
from services.gateway.protocol import ApiError, ChatCompletionRequest, answer_error, chunk_body, completion_body, sse
from shared.client import BROKER_ERRORS
from shared.contracts.envelope import Envelope

__all__ = ["Completions", "error_response", "read_body", "remaining_text"]

#: What sending a request raises when the pipeline cannot take it (the broker away, the client stopped): a 503.
UNAVAILABLE: tuple[type[Exception], ...] = (*BROKER_ERRORS, RuntimeError)


def error_response(exc: ApiError) -> JSONResponse:
    """The OpenAI-shaped error body of ``exc`` with its status and headers."""
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


def remaining_text(final: Envelope, streamed: str) -> str:
    """What the final answer adds to the streamed text: all of it when nothing streamed.

    Postprocess may polish the final text (trim a leaked token, an invented next turn); when
    the streamed text is no longer a prefix of it, the stream already said what it says.
    """
    text = final.response.text if final.response else ""
    if not streamed:
        return text
    return text[len(streamed) :] if text.startswith(streamed) else ""


@dataclass(frozen=True)
class _Call:
    """One chat completion in flight: what it asked for and when it started."""

    env: Envelope
    model: str
    timeout: float
    started: float
    include_usage: bool


class Completions:
    """Chat completions through the pipeline.

    Example:
        >>> completions = Completions(gateway)
        >>> response = await completions.handle(request)  # a JSONResponse, or a StreamingResponse of SSE events

    """

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def handle(self, request: Request) -> Response:
        """Authenticate, limit, build the envelope, send it; the answer (or the error) as the HTTP response."""
        gw = self.gw
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
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            call = _Call(env, model, timeout, started, include_usage)
            if stream:
                return await self._stream(call)
            sent_at = time.perf_counter()
            answer = await self._answer(call)
            pipeline_ms = (time.perf_counter() - sent_at) * 1000
        except ApiError as exc:
            gw.observe(exc.status, started, stream=stream)
            return error_response(exc)
        gw.observe(200, started, stream=False, answer=answer)
        content = completion_body(answer, model, int(time.time()))
        total_ms = (time.perf_counter() - started) * 1000
        # What the gateway itself adds is the difference: total minus the wait for the pipeline.
        timing = f"gateway;dur={total_ms:.3f}, pipeline;dur={pipeline_ms:.3f}"
        return JSONResponse(content, headers={"Server-Timing": timing})

    async def _answer(self, call: _Call) -> Envelope:
        gw = self.gw
        try:
            fut = await gw.client.send(call.env)
        except UNAVAILABLE as exc:
            raise gw.unavailable(exc) from None
        try:
            answer = await asyncio.wait_for(fut, call.timeout)
        except TimeoutError:
            gw.client.forget(call.env.request_id)
            raise gw.timed_out(call.timeout) from None
        error = answer_error(answer)
        if error is not None:
            raise error
        return answer

    async def _stream(self, call: _Call) -> StreamingResponse:
        gw = self.gw
        pieces = gw.client.iter_answer(call.env, timeout=call.timeout)
        try:
            first = await anext(pieces)
        except TimeoutError:  # first: TimeoutError is an OSError, one of the broker errors
            raise gw.timed_out(call.timeout) from None
        except UNAVAILABLE as exc:
            raise gw.unavailable(exc) from None
        if first.kind != "chunk":
            error = answer_error(first)
            if error is not None:  # nothing sent yet: the error gets its real status code
                await pieces.aclose()
                raise error
        return StreamingResponse(
            self._events(call, first, pieces),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _events(
        self, call: _Call, first: Envelope, pieces: AsyncGenerator[Envelope, None]
    ) -> AsyncIterator[bytes]:
        """The SSE events: a role delta, each streamed piece, what the final answer adds, the end."""
        request_id, model, created = call.env.request_id, call.model, int(time.time())
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
                    yield sse(self.gw.timed_out(call.timeout).body())
                    piece = None
            if final is not None:
                error = answer_error(final)
                if error is not None:
                    status = error.status
                    yield sse(error.body())
                else:
                    rest = remaining_text(final, "".join(sent))
                    if rest:
                        yield sse(chunk_body(request_id, model, created, {"content": rest}))
                    yield sse(chunk_body(request_id, model, created, {}, final=final, usage=call.include_usage))
            yield sse("[DONE]")
        finally:
            await pieces.aclose()
            self.gw.observe(status, call.started, stream=True, answer=final)
