"""A KRaft node of a small Apache Kafka cluster: its ports and directories, and its ``server.properties``.

Each node is one JVM that is both broker and controller. ``KafkaTuning`` sizes it for a small
machine; ``SecureListener`` adds a SASL_SSL client listener with ACLs, as the secure compose
profile does. ``shared.stack.kafka`` formats, starts and stops the nodes.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KafkaNode", "KafkaTuning", "SecureListener", "new_cluster_id", "node_properties"]


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what ``random-uuid`` prints).

    Like Kafka's own ``Uuid.randomUuid``, never one that starts with ``-``: the storage tool would take it for
    an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class KafkaTuning:
    """JVM and broker settings sized for a small machine (2 cores): a few threads, a modest heap.

    ``internal_partitions`` sizes ``__consumer_offsets`` and ``__transaction_state`` (Kafka's default of 50
    each takes seconds to create on 2 cores when the first group or transaction appears).
    """

    heap_mb: int = 512
    network_threads: int = 2
    io_threads: int = 2
    internal_partitions: int = 8
    partitions: int = 4
    #: Largest message value (the pipeline's ``max_message_bytes``) plus room for headers and batch overhead.
    message_max_bytes: int = 1_048_576 + 64 * 1024
    transaction_timeout_max_ms: int = 900_000

    def jvm_options(self) -> list[str]:
        """Heap, a low-pause collector and headless operation."""
        return [
            f"-Xms{min(256, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
        ]


@dataclass(frozen=True)
class SecureListener:
    """A client listener with SASL_SSL (SCRAM-SHA-512) and ACLs, like the secure compose profile.

    The broker's own traffic and administration stay on a plaintext ``ADMIN`` listener bound to loopback whose
    unauthenticated principal is a super user (the compose profile does the same inside the broker's container).
    ``keystore`` and ``keystore_password_file`` are what ``infra/secure/gen-certs.sh`` makes; ``users`` are
    created with SCRAM-SHA-512 credentials when the log directory is formatted.
    """

    keystore: Path
    keystore_password_file: Path
    users: Mapping[str, str] = field(default_factory=dict)


@dataclass
class KafkaNode:
    """One KRaft process (broker and controller) of a cluster; its ports and its own log directory."""

    node_id: int
    host: str
    port: int
    controller_port: int
    data_dir: Path
    log_path: Path
    admin_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` of its client listener."""
        return f"{self.host}:{self.port}"

    @property
    def admin_bootstrap(self) -> str:
        """Its plaintext listener (the ADMIN one when the client listener is secure)."""
        return f"{self.host}:{self.admin_port or self.port}"

    @property
    def running(self) -> bool:
        """Whether its process is alive."""
        return self.proc is not None and self.proc.poll() is None


def node_properties(
    node: KafkaNode, nodes: list[KafkaNode], tuning: KafkaTuning, secure: SecureListener | None
) -> dict[str, str]:
    """``server.properties`` of ``node`` in a cluster of ``nodes``, each broker and controller."""
    size = len(nodes)
    replication = min(size, 3)
    voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in nodes)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(node.data_dir),
        "num.network.threads": str(tuning.network_threads),
        "num.io.threads": str(tuning.io_threads),
        "background.threads": "2",
        "num.replica.fetchers": "1",
        "log.cleaner.threads": "1",
        "num.recovery.threads.per.data.dir": "1",
        "auto.create.topics.enable": "false",
        "num.partitions": str(tuning.partitions),
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(max(1, replication - 1)),
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": str(tuning.internal_partitions),
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(max(1, replication - 1)),
        "transaction.state.log.num.partitions": str(tuning.internal_partitions),
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(max(1, replication - 1)),
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(tuning.message_max_bytes),
        "replica.fetch.max.bytes": str(tuning.message_max_bytes),
        "transaction.max.timeout.ms": str(tuning.transaction_timeout_max_ms),
        # A killed node's partitions move within seconds, not the default 18 s of missed heartbeats.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
    }
    if secure is None:
        props |= {
            "listeners": f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{node.host}:{node.port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
        }
    else:
        password = secure.keystore_password_file.read_text().strip()
        props |= {
            "listeners": (
                f"SASL_SSL://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port},"
                f"ADMIN://{node.host}:{node.admin_port}"
            ),
            "advertised.listeners": f"SASL_SSL://{node.host}:{node.port},ADMIN://{node.host}:{node.admin_port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,ADMIN:PLAINTEXT,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name": "ADMIN",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": "User:ANONYMOUS",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(secure.keystore),
            "ssl.keystore.password": password,
            "ssl.key.password": password,
            "ssl.client.auth": "none",
        }
    return props
