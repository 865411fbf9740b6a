"""``llmops up``: the whole pipeline on one machine with no Docker (DESIGN.md §6)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.contracts.topology import STAGES
from shared.runtime.logging import get_logger
from shared.runtime.settings import CoreSettings
from shared.stack.brokers import BrokerKind, BrokerProcess, client_env, make_broker_process
from shared.stack.processes import free_port, http_status, spawn, stop_process
from shared.stack.topics import ensure_topics

__all__ = ["GATEWAY", "STAGES", "EmbeddedStack", "free_port"]

GATEWAY = "gateway"
_MAX_RESTARTS = 5
_RESTART_WINDOW_S = 60.0
_PORT_RETRIES = 3


@dataclass
class ManagedService:
    """One supervised service replica."""

    stage: str
    index: int
    health_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    #: The health port was picked by the stack (so another can be picked if someone takes it first).
    port_picked: bool = True

    @property
    def name(self) -> str:
        """``stage-index``, also the replica id."""
        return f"{self.stage}-{self.index}"


class EmbeddedStack:
    """Broker, topics and services, started in order and stopped in reverse; crashed services are restarted.

    Example:
        >>> stack = EmbeddedStack(CoreSettings())
        >>> await stack.start()
        >>> ...  # talk to the pipeline
        >>> stack.stop()

    """

    def __init__(
        self,
        core: CoreSettings,
        *,
        external: bool = False,
        scale: dict[str, int] | None = None,
        log_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        stop_timeout: float = 90.0,
        gateway_port: int | None = None,
        broker: BrokerKind = "tansu",
        service_env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """``gateway_port``: also run the HTTP gateway there (0: a free port); ``None``: no gateway.

        ``broker``: what to start at ``core.kafka.bootstrap`` (the embedded Tansu, or Apache Kafka from Maven);
        with ``external`` nothing is started and the broker already there is used.
        ``service_env``: more environment for one stage's replicas (by stage name), e.g. its own Kafka principal.
        """
        self.broker_kind: BrokerKind | None = None if external else broker
        # The settings that suit the broker, unless the environment already says otherwise.
        self.client_env = {} if external else {k: v for k, v in client_env(broker).items() if k not in os.environ}
        if self.client_env.get("LLMOPS_KAFKA_ENABLE_IDEMPOTENCE") == "false":
            core = core.model_copy(update={"kafka": core.kafka.model_copy(update={"enable_idempotence": False})})
        self.core = core
        self.external = external
        self.scale = dict.fromkeys(STAGES, 1) | (scale or {})
        self.log_dir = log_dir or core.data_dir / "logs"
        self.extra_env = extra_env or {}
        self.service_env = {stage: dict(env) for stage, env in (service_env or {}).items()}
        self.stop_timeout = stop_timeout
        self.gateway_port = gateway_port
        self.broker: BrokerProcess | None = None
        self.services: list[ManagedService] = []
        self.log = get_logger("llmops.stack")

    def _broker_address(self) -> tuple[str, int]:
        first = self.core.kafka.bootstrap.split(",")[0]
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port or 9092)

    async def start(self, *, timeout: float = 300.0) -> None:
        """Start everything and return once every service reports ready."""
        if self.broker_kind is not None:
            host, port = self._broker_address()
            self.broker = make_broker_process(self.broker_kind, host, port, log_dir=self.log_dir)
            await self.broker.start()
            self.log.info("broker.started", kind=self.broker_kind, bootstrap=self.broker.bootstrap)
        created = await ensure_topics(self.core.kafka, self.core.topics.all(), self.core.topics.configs())
        self.log.info("topics.ready", created=created, partitions=self.core.kafka.partitions)
        for stage in STAGES:
            for index in range(self.scale.get(stage, 1)):
                svc = ManagedService(stage, index, free_port(), self.log_dir / f"{stage}-{index}.log")
                self._spawn(svc)
                self.services.append(svc)
        if self.gateway_port is not None:
            # First in the list: stopped first, so no new requests come in while the stages drain.
            gateway = ManagedService(GATEWAY, 0, self.gateway_port or free_port(), self.log_dir / "gateway-0.log")
            gateway.port_picked = not self.gateway_port
            self._spawn(gateway)
            self.services.insert(0, gateway)
        await self.wait_ready(timeout=timeout)

    @property
    def gateway_url(self) -> str | None:
        """The gateway's base URL, when it runs."""
        for svc in self.services:
            if svc.stage == GATEWAY:
                return f"http://127.0.0.1:{svc.health_port}"
        return None

    def _env(self, svc: ManagedService) -> dict[str, str]:
        prefix = f"LLMOPS_{svc.stage.upper()}_"
        env = dict(os.environ) | self.client_env | self.extra_env | self.service_env.get(svc.stage, {})
        env |= {
            "LLMOPS_KAFKA_BOOTSTRAP": self.core.kafka.bootstrap,
            "LLMOPS_TOPIC_PREFIX": self.core.topics.prefix,
            "LLMOPS_DATA_DIR": str(self.core.data_dir),
            f"{prefix}HEALTH_PORT": str(svc.health_port),
            f"{prefix}REPLICA": svc.name,
            "LLMOPS_LOG_FORMAT": env.get("LLMOPS_LOG_FORMAT", "json"),
        }
        if svc.stage == GATEWAY:  # its API port is also where /readyz answers
            env["LLMOPS_GATEWAY_PORT"] = str(svc.health_port)
        if self.core.default_model:
            env["LLMOPS_DEFAULT_MODEL"] = self.core.default_model
        return env

    def _spawn(self, svc: ManagedService) -> None:
        svc.proc = spawn([sys.executable, "-m", f"services.{svc.stage}"], env=self._env(svc), log_path=svc.log_path)
        self.log.info("service.spawned", service=svc.name, pid=svc.proc.pid, log=str(svc.log_path))

    async def add_replica(self, stage: str, *, timeout: float = 180.0) -> ManagedService:
        """Start one more replica of ``stage`` (it joins the stage's consumer group); return once it is ready."""
        index = max((s.index for s in self.services if s.stage == stage), default=-1) + 1
        svc = ManagedService(stage, index, free_port(), self.log_dir / f"{stage}-{index}.log")
        self._spawn(svc)
        self.services.append(svc)
        await self.wait_ready(timeout=timeout)
        return svc

    def remove_replica(self, svc: ManagedService, *, timeout: float | None = None) -> int | None:
        """Stop one replica with SIGTERM (it finishes the message in hand and leaves its group); its exit code."""
        self.services.remove(svc)  # first: the supervisor must not start it again
        if svc.proc is None:
            return None
        code = stop_process(svc.proc, timeout=timeout or self.stop_timeout)
        self.log.info("service.removed", service=svc.name, code=code)
        return code

    async def wait_ready(self, *, timeout: float) -> None:
        """Wait for every service's ``/readyz``; a service that exits meanwhile is an error.

        Except when its health port was taken between the pick and the bind (another process on the machine got
        it first): then it starts again on another port, a few times at most.
        """
        deadline = time.monotonic() + timeout
        waiting = list(self.services)
        port_retries = dict.fromkeys((s.name for s in waiting), _PORT_RETRIES)
        while waiting:
            for svc in list(waiting):
                if svc.proc is not None and svc.proc.poll() is not None:
                    tail = svc.log_path.read_text(errors="replace")[-3000:] if svc.log_path.exists() else ""
                    if svc.port_picked and "address already in use" in tail[-600:] and port_retries[svc.name] > 0:
                        port_retries[svc.name] -= 1
                        self.log.warning("service.port_taken", service=svc.name, port=svc.health_port)
                        svc.health_port = free_port()
                        self._spawn(svc)
                        continue
                    msg = f"{svc.name} exited with code {svc.proc.returncode} while starting:\n{tail}"
                    raise RuntimeError(msg)
                if await http_status("127.0.0.1", svc.health_port, "/readyz") == 200:  # noqa: PLR2004 - HTTP OK
                    waiting.remove(svc)
                    self.log.info("service.ready", service=svc.name)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                msg = f"not ready after {timeout:.0f} s: {names} (logs in {self.log_dir})"
                raise TimeoutError(msg)
            if waiting:
                await asyncio.sleep(0.2)

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart services that exit, at most a few times a minute each, until ``stop`` is set."""
        while not stop.is_set():
            for svc in self.services:
                if svc.proc is None or svc.proc.poll() is None:
                    continue
                now = time.monotonic()
                svc.restarts = [t for t in svc.restarts if now - t < _RESTART_WINDOW_S]
                if len(svc.restarts) >= _MAX_RESTARTS:
                    self.log.error("service.crash_loop", service=svc.name, code=svc.proc.returncode)
                    stop.set()
                    break
                self.log.warning("service.restart", service=svc.name, code=svc.proc.returncode)
                svc.restarts.append(now)
                self._spawn(svc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)

    def stop(self) -> None:
        """Stop the services (entry side first, so in-flight work drains downstream), then the broker."""
        signalled = []
        for svc in self.services:
            if svc.proc is not None and svc.proc.poll() is None:
                svc.proc.terminate()
                signalled.append(svc)
        for svc in self.services:
            if svc.proc is not None:
                stop_process(svc.proc, timeout=self.stop_timeout, signalled=svc in signalled)
                self.log.info("service.stopped", service=svc.name, code=svc.proc.returncode)
        self.services.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
            self.log.info("broker.stopped")
