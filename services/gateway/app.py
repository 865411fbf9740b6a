"""The gateway's ASGI app: OpenAI-compatible HTTP in, pipeline requests out, answers from this replica's reply topic.

Thin by design (DESIGN.md §4): this module is the route table. Shared state is in ``gateway``, auth and
limits in ``auth``, chat completions in ``completions``, model cards in ``catalog``, the wire format in
``protocol``, statistics in ``stats``; talking to Kafka is the client SDK's job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway.catalog import model_card
from services.gateway.completions import Completions, error_response, read_body
from services.gateway.gateway import Gateway
from services.gateway.protocol import ApiError
from services.gateway.settings import GatewaySettings

__all__ = ["Routes", "app_factory", "create_app", "read_body"]


def _playground() -> str:
    return files("services.gateway").joinpath("static/index.html").read_text(encoding="utf-8")


class Routes:
    """The gateway's HTTP routes, each a method over the shared ``Gateway``.

    Example:
        >>> routes = Routes(Gateway(GatewaySettings()))
        >>> app.add_api_route("/healthz", routes.healthz, methods=["GET"])

    """

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.completions = Completions(gateway)
        self.page = _playground()

    async def api_error(self, _request: Request, exc: Exception) -> Response:
        """An ``ApiError`` raised by a route, as its OpenAI-shaped error body."""
        assert isinstance(exc, ApiError)  # noqa: S101 - registered for ApiError only
        return error_response(exc)

    async def http_error(self, _request: Request, exc: Exception) -> Response:
        """Starlette's own errors (an unknown path) in the same shape."""
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for HTTPException only
        code = "not_found" if exc.status_code == 404 else None  # noqa: PLR2004 - HTTP status
        return error_response(ApiError(exc.status_code, str(exc.detail), code=code))

    async def playground(self) -> HTMLResponse:
        """The chat playground page."""
        return HTMLResponse(self.page)

    async def healthz(self) -> JSONResponse:
        """Ready once connected to the broker and listening on this replica's reply topic."""
        ready = self.gw.ready
        return JSONResponse(
            {"status": "ok" if ready else "starting", "reply_topic": self.gw.reply_topic}, 200 if ready else 503
        )

    async def livez(self) -> JSONResponse:
        """Alive while the process answers."""
        return JSONResponse({"status": "alive"})

    async def metrics(self) -> Response:
        """The gateway's Prometheus metrics."""
        return Response(generate_latest(self.gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def models(self, request: Request) -> JSONResponse:
        """The models and aliases the caller's tenant may use."""
        principal = self.gw.authenticate(request)
        registry = self.gw.registry
        names = [name for name in registry.names(aliases=True) if principal.config.allows(name)]
        return JSONResponse({"object": "list", "data": [model_card(registry, name) for name in names]})

    async def model(self, name: str, request: Request) -> JSONResponse:
        """One model's card; a model the tenant may not use does not exist for it."""
        principal = self.gw.authenticate(request)
        if name not in self.gw.registry.names(aliases=True) or not principal.config.allows(name):
            raise ApiError(404, f"The model {name!r} does not exist.", code="model_not_found", param="model")
        return JSONResponse(model_card(self.gw.registry, name))

    async def templates(self, request: Request) -> JSONResponse:
        """The prompt templates the caller may pick (one, when its tenant's is fixed)."""
        principal = self.gw.authenticate(request)
        fixed = principal.config.template
        return JSONResponse({"data": [fixed] if fixed else self.gw.settings.templates, "tenant_fixed": bool(fixed)})

    async def pipeline_stats(self, request: Request) -> JSONResponse:
        """Recent latencies, throughput and each stage's consumer lag (the playground's panel)."""
        gw = self.gw
        gw.authenticate(request)
        snapshot = gw.stats.snapshot()
        snapshot["lag"] = await gw.lag.measure() if gw.ready else {}
        snapshot["ready"] = gw.ready
        snapshot["reply_topic"] = gw.reply_topic
        return JSONResponse(snapshot)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The FastAPI app; the broker connection is made in its lifespan."""
    gw = Gateway(settings or GatewaySettings())
    routes = Routes(gw)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(title="llmops gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gw
    app.add_exception_handler(ApiError, routes.api_error)
    app.add_exception_handler(StarletteHTTPException, routes.http_error)
    app.add_api_route("/", routes.playground, methods=["GET"], include_in_schema=False)
    app.add_api_route("/healthz", routes.healthz, methods=["GET"])
    app.add_api_route("/readyz", routes.healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/livez", routes.livez, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", routes.metrics, methods=["GET"])
    app.add_api_route("/v1/models", routes.models, methods=["GET"])
    app.add_api_route("/v1/models/{name}", routes.model, methods=["GET"])
    app.add_api_route("/v1/templates", routes.templates, methods=["GET"])
    app.add_api_route("/v1/pipeline/stats", routes.pipeline_stats, methods=["GET"])
    app.add_api_route("/v1/chat/completions", routes.completions.handle, methods=["POST"])
    return app


def app_factory() -> Any:
    """``uvicorn --factory services.gateway.app:app_factory``."""
    return create_app()
