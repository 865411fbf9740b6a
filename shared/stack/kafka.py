"""Apache Kafka from Maven: a KRaft broker (or a small cluster) started with ``java``, for tests and ``llmops up``.

``make kafka`` copies the broker's jars from Maven Central (``infra/kafka/pom.xml``); ``shared.stack.kafka_jars``
finds and checks them. Each node here is one JVM that is both broker and controller;
its log directory is formatted once (``kafka.tools.StorageTool``) and the node is ready when the broker answers
a metadata request with every node of the cluster registered.

``KafkaServer`` has the embedded Tansu broker's interface (``bootstrap``, ``start``, ``stop``), so a stack or a
test fixture can run on either. ``KafkaCluster`` runs several nodes on one machine and can kill and restart one,
for the broker-failure tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.stack.kafka_jars import java_binary, kafka_libs, verify_jars
from shared.stack.kafka_nodes import KafkaNode, KafkaTuning, SecureListener, new_cluster_id, node_properties
from shared.stack.processes import free_port, spawn, stop_process, wait_port

__all__ = [
    "KafkaCluster",
    "KafkaServer",
]

_REPO = Path(__file__).resolve().parents[2]
LOG4J_CONFIG = _REPO / "infra" / "kafka" / "log4j2.properties"


class KafkaCluster:
    """``size`` KRaft nodes on one machine, each broker and controller (a quorum of ``size`` voters).

    Example:
        >>> cluster = KafkaCluster(ports=[19092, 19094, 19096], base_dir=Path("/tmp/kafka"))
        >>> await cluster.start()
        >>> cluster.kill(1)  # SIGKILL node 1; the other two keep the quorum
        >>> await cluster.restart(1)
        >>> cluster.stop()

    """

    def __init__(
        self,
        *,
        ports: list[int],
        controller_ports: list[int] | None = None,
        host: str = "127.0.0.1",
        base_dir: Path | None = None,
        log_dir: Path | None = None,
        tuning: KafkaTuning | None = None,
        secure: SecureListener | None = None,
        admin_ports: list[int] | None = None,
        libs: Path | None = None,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.tuning = tuning or KafkaTuning()
        self.secure = secure
        self.libs = libs or kafka_libs()
        self.extra_properties = dict(extra_properties or {})
        self._own_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="llmops-kafka-"))
        self.log_dir = log_dir or self.base_dir / "logs"
        controllers = controller_ports or [free_port(host) for _ in ports]
        admins: list[int | None] = list(admin_ports or [])
        if not admins:
            admins = [free_port(host) if secure else None for _ in ports]
        self.nodes = [
            KafkaNode(
                node_id=i + 1,
                host=host,
                port=port,
                controller_port=controllers[i],
                admin_port=admins[i],
                data_dir=self.base_dir / f"node-{i + 1}",
                log_path=self.log_dir / f"kafka-{i + 1}.log",
            )
            for i, port in enumerate(ports)
        ]
        self.cluster_id = new_cluster_id()
        self._classpath: str | None = None

    @property
    def bootstrap(self) -> str:
        """Every node's client listener, comma-separated."""
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def admin_bootstrap(self) -> str:
        """Every node's plaintext (admin) listener, comma-separated."""
        return ",".join(n.admin_bootstrap for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        """The node with this id (1-based)."""
        return self.nodes[node_id - 1]

    def properties(self, node: KafkaNode) -> dict[str, str]:
        """``server.properties`` of one node."""
        return node_properties(node, self.nodes, self.tuning, self.secure) | self.extra_properties

    def _java(self, *args: str, heap_mb: int = 128) -> list[str]:
        if self._classpath is None:
            verify_jars(self.libs)
            self._classpath = str(self.libs / "*")
        return [
            java_binary(),
            f"-Xmx{heap_mb}m",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            self._classpath,
            *args,
        ]

    def _format(self, node: KafkaNode, config: Path) -> None:
        if (node.data_dir / "meta.properties").is_file():
            return  # formatted before: a restarted node keeps its log
        argv = self._java("kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(config))
        for user, password in self.secure.users.items() if self.secure else ():
            argv += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
        if result.returncode != 0:
            msg = f"formatting Kafka node {node.node_id} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}"
            raise RuntimeError(msg)

    def _configure(self, node: KafkaNode) -> Path:
        """Write the node's ``server.properties`` and format its log directory unless it was before."""
        node.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.base_dir / f"server-{node.node_id}.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in self.properties(node).items()))
        config.chmod(0o600)  # it may hold the keystore's password
        self._format(node, config)
        return config

    def _spawn(self, node: KafkaNode) -> None:
        config = self._configure(node)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "LOG4J"))}
        argv = self._java(*self.tuning.jvm_options(), "kafka.Kafka", str(config), heap_mb=self.tuning.heap_mb)
        node.proc = spawn(argv, env=env, log_path=node.log_path)

    async def start(self, *, timeout: float = 90.0) -> None:
        """Format and start every node; return once all of them are registered and serving."""
        for node in self.nodes:  # a JVM each, one after the other (formatting is CPU-bound)
            await asyncio.to_thread(self._configure, node)
        for node in self.nodes:
            self._spawn(node)
        try:
            await self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    async def wait_ready(self, *, timeout: float = 90.0, nodes: list[KafkaNode] | None = None) -> None:
        """Wait until each running node listens and the cluster's metadata lists every running node."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = [n for n in (nodes or self.nodes) if n.proc is not None]
        for node in waiting:
            await wait_port(node.host, node.admin_port or node.port, timeout=max(1.0, deadline - loop.time()))
            self._check_alive(node)
        expected = {n.node_id for n in self.nodes if n.running}
        while True:
            for node in waiting:
                self._check_alive(node)
            registered = await self._registered(waiting[0] if waiting else self.nodes[0])
            if expected <= registered:
                return
            if loop.time() > deadline:
                msg = f"Kafka nodes {sorted(expected - registered)} not registered after {timeout:.0f} s"
                raise TimeoutError(msg)
            await asyncio.sleep(0.2)

    def _check_alive(self, node: KafkaNode) -> None:
        if node.proc is not None and node.proc.poll() is not None:
            tail = node.log_path.read_text(errors="replace")[-3000:] if node.log_path.exists() else ""
            msg = f"Kafka node {node.node_id} exited with code {node.proc.returncode}:\n{tail}"
            raise RuntimeError(msg)

    async def _registered(self, node: KafkaNode) -> set[int]:
        """The node ids the cluster's metadata lists, asked of ``node`` (empty while it cannot answer)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=node.admin_bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
        except (KafkaError, OSError, TimeoutError):
            return set()
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        return {int(b["node_id"]) for b in cluster.get("brokers", [])}

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no shutdown, no leadership handed over (the crash the fault tests need)."""
        node = self.node(node_id)
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(timeout=10)

    def pause(self, node_id: int) -> None:
        """SIGSTOP one node: it holds its connections but answers nothing (an unreachable broker)."""
        node = self.node(node_id)
        if node.proc is not None:
            node.proc.send_signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        """SIGCONT a paused node."""
        node = self.node(node_id)
        if node.proc is not None:
            node.proc.send_signal(signal.SIGCONT)

    async def restart(self, node_id: int, *, timeout: float = 90.0) -> None:
        """Start a stopped or killed node again on its own log directory; return once it is registered."""
        node = self.node(node_id)
        if node.running:
            return
        self._spawn(node)
        await self.wait_ready(timeout=timeout, nodes=[node])

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop every node (controlled shutdown), then remove the log directories this cluster created."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGCONT)  # a paused node must run to shut down
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                stop_process(node.proc, timeout=timeout, signalled=True)
                node.proc = None
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


class KafkaServer:
    """One Apache Kafka node (KRaft, broker and controller) on ``host:port``: the embedded broker's interface.

    Its log directory is a temporary folder, removed at stop, unless ``data_dir`` names one to keep.

    Example:
        >>> broker = KafkaServer("127.0.0.1", 9092)
        >>> await broker.start()
        >>> broker.stop()

    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        log_path: Path | None = None,
        data_dir: Path | None = None,
        tuning: KafkaTuning | None = None,
        secure: SecureListener | None = None,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        log_dir = log_path.parent if log_path is not None else None
        self.cluster = KafkaCluster(
            ports=[port],
            host=host,
            base_dir=data_dir,
            log_dir=log_dir,
            tuning=tuning,
            secure=secure,
            extra_properties=extra_properties,
        )
        if log_path is not None:
            self.cluster.nodes[0].log_path = log_path

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"{self.host}:{self.port}"

    @property
    def admin_bootstrap(self) -> str:
        """The plaintext listener (the ADMIN one when secure)."""
        return self.cluster.admin_bootstrap

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The JVM's process."""
        return self.cluster.nodes[0].proc

    async def start(self, *, timeout: float = 90.0) -> None:
        """Format the log directory (once) and start the node; return when it serves metadata."""
        await self.cluster.start(timeout=timeout)

    def stop(self) -> None:
        """Stop the node (its data goes with it unless ``data_dir`` was given)."""
        self.cluster.stop()
