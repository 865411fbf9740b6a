"""KRaft nodes: cluster ids, and server.properties sized for a small machine, replicated, or secure."""

from __future__ import annotations

import re
from pathlib import Path

from shared.stack.kafka import KafkaCluster
from shared.stack.kafka_nodes import SecureListener, new_cluster_id


class TestNodeConfiguration:
    def test_cluster_ids_are_kraft_ids(self) -> None:
        """22 URL-safe base64 characters, different each time."""
        ids = {new_cluster_id() for _ in range(2000)}
        assert len(ids) == 2000
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids)
        assert not [i for i in ids if i.startswith("-")]  # the storage tool would read it as an option

    def test_three_nodes_replicate_three_times_with_two_in_sync(self, tmp_path: Path) -> None:
        """Every node votes; topics get three replicas and need two in sync; the node is sized for 2 cores."""
        cluster = KafkaCluster(ports=[19092, 19094, 19096], controller_ports=[19093, 19095, 19097], base_dir=tmp_path)
        props = cluster.properties(cluster.node(2))
        assert props["node.id"] == "2"
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["num.network.threads"] == props["num.io.threads"] == "2"
        assert props["auto.create.topics.enable"] == "false"
        assert props["listeners"] == "PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"

    def test_one_node_needs_no_replicas(self, tmp_path: Path) -> None:
        """A single node: replication factor and in-sync minimum 1 for everything, internal topics included."""
        cluster = KafkaCluster(ports=[19092], base_dir=tmp_path)
        props = cluster.properties(cluster.nodes[0])
        assert props["default.replication.factor"] == "1"
        assert props["min.insync.replicas"] == "1"
        assert props["transaction.state.log.replication.factor"] == "1"

    def test_the_secure_listener_is_sasl_ssl_with_acls_and_a_loopback_admin(self, tmp_path: Path) -> None:
        """SASL_SSL (SCRAM-SHA-512) for clients, the StandardAuthorizer denying by default, ADMIN for the broker."""
        password = tmp_path / "keystore-password"
        password.write_text("s3cret\n")
        secure = SecureListener(tmp_path / "kafka.keystore.p12", password, {"alice": "pw"})
        cluster = KafkaCluster(ports=[19092], admin_ports=[19091], base_dir=tmp_path, secure=secure)
        props = cluster.properties(cluster.nodes[0])
        assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,ADMIN:PLAINTEXT,SASL_SSL:SASL_SSL"
        assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:19092,ADMIN://127.0.0.1:19091"
        assert props["inter.broker.listener.name"] == "ADMIN"
        assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["ssl.keystore.password"] == "s3cret"
        assert cluster.admin_bootstrap == "127.0.0.1:19091"
