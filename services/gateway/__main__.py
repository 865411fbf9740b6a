"""``python -m services.gateway``: serve the API and the playground with uvicorn."""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.runtime.logging import configure_logging


def main() -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    settings = GatewaySettings()
    configure_logging(settings.core.log_level, settings.core.log_format)
    app = create_app(settings)
    # uvicorn picks httptools and uvloop (dependencies) for speed; access lines are off: the gateway
    # logs and counts requests itself, and URLs or bodies must not reach info-level logs.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
    )


if __name__ == "__main__":
    main()
