"""The gateway app against a real broker; a small stand-in plays the pipeline's part (e2e tests use the real one)."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from starlette.requests import Request

from services.gateway.app import create_app, read_body
from services.gateway.auth import AuthConfig, KeyEntry, RateLimit, TenantConfig, hash_key
from services.gateway.protocol import ApiError
from services.gateway.settings import GatewaySettings
from shared.contracts.envelope import (
    Chunk,
    Completion,
    Envelope,
    ErrorInfo,
    Response,
    Safety,
    TrailRecord,
)
from shared.stack.embedded import free_port
from shared.stack.topics import ensure_topics
from tests.conftest import core_settings, tail_consumer

KEY = "sk-test-acme"
LIMITED = "sk-test-limited"
AUTH = AuthConfig(
    tenants={
        "acme": TenantConfig(models=["gemma-3-270m"], template="default"),
        "limited": TenantConfig(rate_limit=RateLimit(requests_per_minute=6, burst=2)),
    },
    keys=[KeyEntry(sha256=hash_key(KEY), tenant="acme"), KeyEntry(sha256=hash_key(LIMITED), tenant="limited")],
)


def _answer_to(req: Envelope) -> list[Envelope]:
    """What the stand-in pipeline answers: chosen by the request text."""
    text = req.last_user_text
    trail = [TrailRecord(stage="inference", replica="i-0", started_at=req.created_at, duration_ms=3.0, outcome="ok")]
    final = req.model_copy(update={"kind": "final", "trail": trail})
    if "SILENT" in text:
        return []
    if "CARD" in text:
        safety = Safety(verdict="block", category="a payment card number", refusal="Refused.")
        return [final.model_copy(update={"safety": safety, "response": Response(text="Refused.", refused=True)})]
    if "LONG" in text:
        error = ErrorInfo(code="prompt_too_long", message="the prompt has 9000 tokens", stage="preprocess")
        return [final.model_copy(update={"error": error})]
    completion = Completion(text="Hello there!", model="gemma-3-270m", tokens_in=5, tokens_out=3)
    done = final.model_copy(update={"completion": completion, "response": Response(text="Hello there!")})
    if "CHUNKS" in text:
        pieces = [
            req.model_copy(update={"kind": "chunk", "chunk": Chunk(seq=i, text=t)})
            for i, t in enumerate(["Hello", " there"])
        ]
        if "FAIL" in text:
            error = ErrorInfo(code="internal_error", message="postprocess crashed", stage="postprocess")
            return [*pieces, final.model_copy(update={"error": error})]
        return [*pieces, done]
    return [done]


@pytest.fixture(scope="module")
async def stand_in(kafka: str) -> AsyncIterator[list[Envelope]]:
    """Answers requests on the gw-test. topics to their reply topic; yields the requests it saw."""
    core = core_settings(kafka, prefix="gw-test.")
    await ensure_topics(core.kafka, core.topics.all())
    consumer = await tail_consumer(core, core.topics.requests)
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    seen: list[Envelope] = []

    async def serve() -> None:
        async for record in consumer:
            req = Envelope.from_bytes(record.value)
            seen.append(req)
            for out in _answer_to(req):
                assert req.reply_to is not None
                await producer.send_and_wait(req.reply_to, out.to_bytes(), key=req.conversation_id.encode())

    task = asyncio.create_task(serve())
    yield seen
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await consumer.stop()
    await producer.stop()


@pytest.fixture(scope="module")
async def gateway(kafka: str, stand_in: list[Envelope]) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(core=core_settings(kafka, prefix="gw-test."), replica="test-1", auth=AUTH, timeout_s=20)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if app.state.gateway.ready:
                break
            await asyncio.sleep(0.1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


def _chat(text: str, **fields: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **fields}


def _auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _events(body: str) -> list[str]:
    return [line.removeprefix("data: ") for line in body.split("\n\n") if line.startswith("data: ")]


def _assert_openai_error(resp: httpx.Response, status: int, code: str | None) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["code"] == code
    return error  # type: ignore[no-any-return]


class TestAuthAndLimits:
    async def test_missing_and_wrong_keys_get_401(self, gateway: httpx.AsyncClient) -> None:
        """No key, a malformed header and an unknown key are 401 authentication errors."""
        for headers in ({}, {"Authorization": KEY}, _auth("sk-wrong")):
            resp = await gateway.post("/v1/chat/completions", json=_chat("hi"), headers=headers)
            error = _assert_openai_error(
                resp, 401, "invalid_api_key" if headers.get("Authorization") == "Bearer sk-wrong" else "missing_api_key"
            )
            assert error["type"] == "authentication_error"
        assert (await gateway.get("/v1/models")).status_code == 401

    async def test_a_model_the_tenant_may_not_use_is_403_and_an_unknown_one_404(
        self, gateway: httpx.AsyncClient
    ) -> None:
        """acme may use gemma only: qwen is 403, a model not in the registry is 404."""
        resp = await gateway.post(
            "/v1/chat/completions", json=_chat("hi", model="qwen2.5-coder-0.5b-instruct"), headers=_auth()
        )
        assert _assert_openai_error(resp, 403, "model_not_allowed")["type"] == "permission_error"
        resp = await gateway.post("/v1/chat/completions", json=_chat("hi", model="gpt-7"), headers=_auth())
        _assert_openai_error(resp, 404, "model_not_found")

    async def test_models_list_comes_from_the_registry_filtered_by_tenant(self, gateway: httpx.AsyncClient) -> None:
        """acme sees its one model; an unrestricted tenant sees the whole registry."""
        acme = (await gateway.get("/v1/models", headers=_auth())).json()
        assert [m["id"] for m in acme["data"]] == ["gemma-3-270m"]
        everyone = (await gateway.get("/v1/models", headers=_auth(LIMITED))).json()
        assert {m["id"] for m in everyone["data"]} == {"gemma-3-270m", "qwen2.5-coder-0.5b-instruct"}
        assert (await gateway.get("/v1/models/gemma-3-270m", headers=_auth())).json()["context_length"] == 2048
        hidden = await gateway.get("/v1/models/qwen2.5-coder-0.5b-instruct", headers=_auth())
        _assert_openai_error(hidden, 404, "model_not_found")

    async def test_over_the_rate_limit_is_429_with_retry_after(self, gateway: httpx.AsyncClient) -> None:
        """With a burst of 2 at 6/min, the third request at once is a 429 with Retry-After of 10 s."""
        statuses = []
        for _ in range(3):
            resp = await gateway.post(
                "/v1/chat/completions", json=_chat("hi", model="gemma-3-270m"), headers=_auth(LIMITED)
            )
            statuses.append(resp.status_code)
        assert statuses == [200, 200, 429]
        assert _assert_openai_error(resp, 429, "rate_limit_exceeded")["type"] == "rate_limit_error"
        assert resp.headers["Retry-After"] == "10"

    async def test_invalid_parameters_are_400(self, gateway: httpx.AsyncClient) -> None:
        """A bad parameter or a body that is not JSON is a 400 naming the parameter."""
        resp = await gateway.post("/v1/chat/completions", json=_chat("hi", top_p=0), headers=_auth())
        assert _assert_openai_error(resp, 400, "invalid_value")["param"] == "top_p"
        resp = await gateway.post("/v1/chat/completions", content=b"{", headers=_auth())
        _assert_openai_error(resp, 400, "invalid_json")


class TestAnswers:
    async def test_non_streaming_answer_with_extras(self, gateway: httpx.AsyncClient, stand_in: list[Envelope]) -> None:
        """The answer is a chat.completion; the request went out with the tenant, template, conversation and params."""
        resp = await gateway.post(
            "/v1/chat/completions",
            json=_chat(
                "hi",
                max_tokens=7,
                conversation_id="conv-9",
                metadata={"app": "t", "shadow": "1", "policy": "devtools", "replay_of": "r0"},
            ),
            headers=_auth(),
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["choices"][0]["message"]["content"] == "Hello there!"
        assert body["llmops"]["conversation_id"] == "conv-9"
        assert body["llmops"]["trail"][0]["stage"] == "inference"
        assert "gateway;dur=" in resp.headers["Server-Timing"]
        sent = next(r for r in stand_in if r.request_id == body["llmops"]["request_id"])
        assert sent.tenant == "acme"
        assert sent.reply_to == "gw-test.responses.gateway-test-1"
        request = sent.require_request()
        assert request.metadata == {"app": "t", "template": "default"}  # shadow-only keys dropped: live traffic
        assert request.params.max_tokens == 7
        assert request.model == "gemma-3-270m"
        assert request.stream is False

    async def test_stream_without_upstream_chunks_sends_the_final_text_as_one_chunk(
        self, gateway: httpx.AsyncClient
    ) -> None:
        """With no chunk envelopes, the SSE stream is: role, the whole text, the closing chunk, [DONE]."""
        resp = await gateway.post(
            "/v1/chat/completions",
            json=_chat("hi", stream=True, stream_options={"include_usage": True}),
            headers=_auth(),
        )
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = _events(resp.text)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["Hello there!"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
        assert chunks[-1]["usage"]["completion_tokens"] == 3
        assert chunks[-1]["llmops"]["trail"][0]["stage"] == "inference"
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}

    async def test_stream_forwards_upstream_chunks_in_order(self, gateway: httpx.AsyncClient) -> None:
        """Chunk envelopes become content deltas in order; the final adds only what they did not say."""
        resp = await gateway.post("/v1/chat/completions", json=_chat("CHUNKS", stream=True), headers=_auth())
        chunks = [json.loads(e) for e in _events(resp.text)[:-1]]
        deltas = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
        assert deltas == ["Hello", " there", "!"]

    async def test_an_error_after_chunks_is_an_error_event_then_done(self, gateway: httpx.AsyncClient) -> None:
        """Once chunks were sent the status is 200, so a late error arrives as an SSE error event before [DONE]."""
        resp = await gateway.post("/v1/chat/completions", json=_chat("CHUNKS FAIL", stream=True), headers=_auth())
        assert resp.status_code == 200
        events = _events(resp.text)
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert (error["code"], error["stage"]) == ("internal_error", "postprocess")
        deltas = [json.loads(e)["choices"][0]["delta"].get("content") for e in events[1:-2]]
        assert deltas == ["Hello", " there"]

    async def test_replicas_read_their_own_reply_topics(self, kafka: str, stand_in: list[Envelope]) -> None:
        """A second replica names its own reply topic and gets its own answers."""
        settings = GatewaySettings(core=core_settings(kafka, prefix="gw-test."), replica="test-2", auth=AUTH)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            for _ in range(100):
                if app.state.gateway.ready:
                    break
                await asyncio.sleep(0.1)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw2") as client:
                resp = await client.post("/v1/chat/completions", json=_chat("hi"), headers=_auth())
        assert resp.status_code == 200
        sent = next(r for r in stand_in if r.request_id == resp.json()["llmops"]["request_id"])
        assert sent.reply_to == "gw-test.responses.gateway-test-2"

    @pytest.mark.parametrize("stream", [False, True])
    async def test_blocked_by_safety_is_422_with_the_category(self, gateway: httpx.AsyncClient, stream: bool) -> None:  # noqa: FBT001 - parametrized
        """A safety block is a 422 naming the category, streaming or not (nothing was streamed yet)."""
        resp = await gateway.post("/v1/chat/completions", json=_chat("CARD", stream=stream), headers=_auth())
        error = _assert_openai_error(resp, 422, "blocked_by_safety")
        assert error["category"] == "a payment card number"

    async def test_pipeline_errors_keep_their_status(self, gateway: httpx.AsyncClient) -> None:
        """A prompt_too_long answer is a 400 context_length_exceeded from preprocess."""
        resp = await gateway.post("/v1/chat/completions", json=_chat("LONG"), headers=_auth())
        assert _assert_openai_error(resp, 400, "context_length_exceeded")["stage"] == "preprocess"

    async def test_no_answer_in_time_is_504(self, gateway: httpx.AsyncClient) -> None:
        """When the pipeline does not answer within the request's timeout the gateway answers 504."""
        for stream in (False, True):
            resp = await gateway.post(
                "/v1/chat/completions", json=_chat("SILENT", timeout=0.5, stream=stream), headers=_auth()
            )
            assert _assert_openai_error(resp, 504, "timeout")["type"] == "timeout_error"

    async def test_health_metrics_stats_and_playground(self, gateway: httpx.AsyncClient) -> None:
        """/healthz is ready, /metrics counts requests by status, the stats view has stage latency, / is the page."""
        assert (await gateway.get("/healthz")).json()["status"] == "ok"
        metrics = (await gateway.get("/metrics")).text
        assert 'llmops_gateway_requests_total{status="200",stream="false"}' in metrics
        assert 'llmops_stage_seconds_count{stage="inference"}' in metrics
        stats = (await gateway.get("/v1/pipeline/stats", headers=_auth())).json()
        assert stats["stages"]["inference"]["count"] >= 1
        assert stats["requests_per_s"] > 0
        assert set(stats["lag"]) == {"preprocess", "grounding", "safety", "inference", "postprocess"}
        page = await gateway.get("/")
        assert page.headers["content-type"].startswith("text/html")
        assert "ReadableStream" in page.text or "getReader" in page.text
        _assert_openai_error(await gateway.get("/v1/nothing"), 404, "not_found")


class TestUnavailable:
    async def test_no_broker_is_503_and_not_ready(self) -> None:
        """With no broker to talk to, chat requests are 503 pipeline_unavailable and /healthz is 503."""
        core = core_settings(f"127.0.0.1:{free_port()}", prefix="gw-none.")
        app = create_app(GatewaySettings(core=core, replica="x", auth=AUTH))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                resp = await client.post("/v1/chat/completions", json=_chat("hi"), headers=_auth())
                _assert_openai_error(resp, 503, "pipeline_unavailable")
                assert resp.headers["Retry-After"] == "2"
                assert (await client.get("/healthz")).status_code == 503


class TestReadBody:
    """Issue 23: the body's size is checked before the whole of it is held."""

    @staticmethod
    def _request(parts: list[bytes], content_length: int | None) -> tuple[Request, list[int]]:
        pulled: list[int] = []
        headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]

        async def receive() -> dict[str, object]:
            index = len(pulled)
            pulled.append(index)
            body = parts[index] if index < len(parts) else b""
            return {"type": "http.request", "body": body, "more_body": index < len(parts) - 1}

        scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
        return Request(scope, receive), pulled

    async def test_declared_oversize_is_refused_before_reading(self) -> None:
        """A Content-Length over the limit is a 413 without one byte read."""
        request, pulled = self._request([b"x" * 10], content_length=10_000_000)
        with pytest.raises(ApiError) as err:
            await read_body(request, 1024)
        assert err.value.status == 413
        assert pulled == []

    async def test_chunked_oversize_stops_at_the_limit(self) -> None:
        """Without a length, reading stops as soon as the limit is passed, not at the body's end."""
        request, pulled = self._request([b"x" * 600] * 1000, content_length=None)
        with pytest.raises(ApiError) as err:
            await read_body(request, 1024)
        assert err.value.status == 413
        assert len(pulled) == 2

    async def test_a_body_under_the_limit_is_read(self) -> None:
        """Small bodies come back whole."""
        request, _ = self._request([b'{"a":', b" 1}"], content_length=None)
        assert await read_body(request, 1024) == b'{"a": 1}'
