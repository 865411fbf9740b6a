"""What the gateway's routes share: settings, the SDK client, auth, limits, the registry, stats and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.gateway.auth import Authenticator, Principal, RateLimiter
from services.gateway.protocol import ApiError, ChatCompletionRequest
from services.gateway.settings import GatewaySettings
from services.gateway.stats import PipelineStats
from shared.client import BROKER_ERRORS, LlmopsClient
from shared.contracts.envelope import Envelope
from shared.contracts.shadow import SHADOW_ONLY_KEYS
from shared.models.registry import ModelRegistry, UnknownModelError
from shared.runtime.lag import LagProbe
from shared.runtime.logging import get_logger
from shared.runtime.security import BrokerAuthError, check_broker_access
from shared.stack.topics import ensure_topics

# The broker away (a connection or Kafka error) or the client refusing to start: retry later.
_CONNECT_ERRORS: tuple[type[Exception], ...] = (*BROKER_ERRORS, RuntimeError)

__all__ = ["Gateway"]

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
        self.client = LlmopsClient(settings.core, reply_to=self.reply_topic, tenant_topic=settings.tenant_topics)
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
                await check_broker_access(self.settings.core.kafka)
                await ensure_topics(self.settings.core.kafka, [self.reply_topic])
                await self.client.start()
            except BrokerAuthError as exc:
                # Final: retrying a refused login only floods the broker's log; stay not-ready (503).
                self.log.error("gateway.kafka_auth_failed", error=str(exc))  # noqa: TRY400 - one line, no traceback
                with contextlib.suppress(Exception):
                    await self.client.stop()
                return
            except _CONNECT_ERRORS as exc:
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
        """The registry model or alias a request is served by; 404 unknown, 403 not allowed for the tenant.

        A request naming no model gets the registry default, or the tenant's first model when
        the default is not one the tenant may use. An alias stays an alias: preprocess picks
        its variant per conversation, and the answer says which one served it.
        """
        if name is None and principal.config.models and not principal.config.allows(self.registry.default):
            name = principal.config.models[0]
        try:
            model = self.registry.canonical(name)
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
        """The pipeline request for an HTTP request (live traffic: the shadow-only metadata keys are dropped)."""
        metadata = {k: v for k, v in (body.metadata or {}).items() if k not in SHADOW_ONLY_KEYS}
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
