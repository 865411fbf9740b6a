"""A tiny HTTP endpoint for liveness, readiness and metrics (``/livez``, ``/readyz``, ``/metrics``).

Plain asyncio, no web framework: a probe must answer even when the event loop is
the only thing left working.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

__all__ = ["HealthServer"]


class HealthServer:
    """Serves ``/livez`` (always 200 while running) and ``/readyz`` (200 once ``ready`` is set).

    Example:
        >>> server = HealthServer("127.0.0.1", 0)
        >>> server.ready
        False

    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        stage: str = "",
        metrics: Callable[[], tuple[bytes, str]] | None = None,
        details: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.stage = stage
        self.metrics = metrics
        self.details = details
        self.ready = False
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        """Listen; with port 0 the OS picks one and ``port`` is updated."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = request_line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            if path.startswith("/metrics") and self.metrics is not None:
                status, (payload, content_type) = "200 OK", self.metrics()
            else:
                status, body = self._route(path)
                payload, content_type = json.dumps(body).encode(), "application/json"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _route(self, path: str) -> tuple[str, dict[str, object]]:
        if path.startswith("/livez"):
            return "200 OK", {"status": "alive", "stage": self.stage}
        if path.startswith("/readyz"):
            extra = self.details() if self.details is not None else {}
            if self.ready:
                return "200 OK", {"status": "ready", "stage": self.stage, **extra}
            return "503 Service Unavailable", {"status": "starting", "stage": self.stage, **extra}
        return "404 Not Found", {"error": "not found"}
