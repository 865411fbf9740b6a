"""``--workers N``: N inference processes, each with its own model, in one consumer group.

llama.cpp runs one generation per context, so a host scales by processes (DESIGN.md §4).
The supervisor starts the workers, restarts one that dies (a few times a minute at most),
serves ``/readyz`` once every worker is ready, and passes SIGTERM on so each drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

from services.inference.settings import InferenceSettings
from shared.runtime.health import HealthServer
from shared.runtime.logging import configure_logging, get_logger
from shared.stack.embedded import free_port
from shared.stack.processes import http_status, spawn, stop_process

__all__ = ["WorkerPool"]

_MAX_RESTARTS = 5
_RESTART_WINDOW_S = 60.0
_HTTP_OK = 200


class WorkerPool:
    """Supervises ``workers`` inference processes.

    Example:
        >>> exit_code = await WorkerPool(InferenceSettings(workers=4)).run()

    """

    def __init__(self, settings: InferenceSettings) -> None:
        self.settings = settings
        self.size = settings.workers
        self.health = HealthServer(settings.health_host, settings.health_port, stage="inference")
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * self.size
        self.ports = [free_port() if settings.health_port else 0 for _ in range(self.size)]
        self.restarts: list[list[float]] = [[] for _ in range(self.size)]
        self.log = get_logger("llmops.inference.workers")

    def _env(self, index: int) -> dict[str, str]:
        return dict(os.environ) | {
            "LLMOPS_INFERENCE_WORKERS": "1",
            "LLMOPS_INFERENCE_REPLICA": f"{self.settings.replica}-w{index}",
            "LLMOPS_INFERENCE_HEALTH_HOST": "127.0.0.1",
            "LLMOPS_INFERENCE_HEALTH_PORT": str(self.ports[index]),
            "LLMOPS_INFERENCE_METRICS_PORT": str(
                self.settings.metrics_port + index if self.settings.metrics_port else 0
            ),
            # Workers share the host's cores: each gets its share of the threads.
            "LLMOPS_INFERENCE_N_THREADS": str(max(1, self.settings.n_threads // self.size)),
        }

    def _spawn(self, index: int) -> None:
        proc = spawn([sys.executable, "-m", "services.inference", "--workers", "1"], env=self._env(index))
        self.procs[index] = proc
        self.log.info("worker.spawned", worker=index, pid=proc.pid)

    async def _all_ready(self) -> bool:
        if not self.settings.health_port:
            return all(p is not None and p.poll() is None for p in self.procs)
        statuses = [await http_status("127.0.0.1", port, "/readyz") for port in self.ports]
        return all(s == _HTTP_OK for s in statuses)

    def _check_workers(self) -> bool:
        """Restart dead workers; False when one keeps dying."""
        now = time.monotonic()
        for index, proc in enumerate(self.procs):
            if proc is None or proc.poll() is None:
                continue
            recent = [t for t in self.restarts[index] if now - t < _RESTART_WINDOW_S]
            if len(recent) >= _MAX_RESTARTS:
                self.log.error("worker.failing", worker=index, exit_code=proc.returncode)
                return False
            self.restarts[index] = [*recent, now]
            self.log.warning("worker.restart", worker=index, exit_code=proc.returncode)
            self._spawn(index)
        return True

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (0) or a worker that keeps failing (1)."""
        configure_logging(self.settings.core.log_level, self.settings.core.log_format, replica=self.settings.replica)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if self.settings.health_port:
            await self.health.start()
        for index in range(self.size):
            self._spawn(index)
        code = 0
        while not stop.is_set():
            if not self._check_workers():
                code = 1
                break
            ready = await self._all_ready()
            if ready != self.health.ready:
                self.health.ready = ready
                self.log.info("workers.ready" if ready else "workers.not_ready", workers=self.size)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
        self.health.ready = False
        await asyncio.gather(
            *(
                asyncio.to_thread(stop_process, p, timeout=self.settings.shutdown_timeout_s + 5)
                for p in self.procs
                if p is not None
            )
        )
        await self.health.stop()
        self.log.info("workers.stopped", exit_code=code)
        return code
