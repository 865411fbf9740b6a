"""Apache Kafka from Maven: one version everywhere, jars checked by hash, nodes configured for a small machine."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.stack.kafka import (
    JARS_SHA256,
    KAFKA_VERSION,
    KafkaCluster,
    KafkaJarsError,
    KafkaServer,
    SecureListener,
    expected_jars,
    kafka_libs,
    new_cluster_id,
    verify_jars,
)
from shared.stack.processes import free_port
from tests.infra.helpers import ROOT


class TestOneVersion:
    def test_the_pom_the_launcher_and_compose_name_the_same_kafka(self) -> None:
        """infra/kafka/pom.xml, KAFKA_VERSION and both compose files' broker image are one Kafka release."""
        pom = (ROOT / "infra" / "kafka" / "pom.xml").read_text()
        match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
        assert match is not None
        assert match.group(1) == KAFKA_VERSION
        assert KAFKA_VERSION.startswith("4.")
        for name in ("docker-compose.yml", "docker-compose.secure.yml"):
            compose = yaml.safe_load((ROOT / name).read_text())
            images = [s["image"] for s in compose["services"].values() if str(s.get("image", "")).startswith("apache")]
            assert images, name
            assert all(image == f"apache/kafka:{KAFKA_VERSION}" for image in images), (name, images)

    def test_the_jar_listing_is_complete(self) -> None:
        """The hash listing names the broker, its admin tools and the logging bridge, each with a sha256."""
        jars = expected_jars()
        assert f"kafka_2.13-{KAFKA_VERSION}.jar" in jars
        assert f"kafka-tools-{KAFKA_VERSION}.jar" in jars
        assert any(name.startswith("log4j-slf4j2-impl") for name in jars)
        assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in jars.values())


class TestVerifyJars:
    def test_the_prepared_jars_pass(self) -> None:
        """`make kafka`'s folder holds exactly the listed jars, each with its listed hash."""
        assert len(verify_jars(kafka_libs())) == len(expected_jars())

    def test_a_changed_jar_is_refused(self, tmp_path: Path) -> None:
        """One byte changed in one jar: refused, naming the jar."""
        libs = tmp_path / "libs"
        shutil.copytree(kafka_libs(), libs)
        victim = libs / f"kafka-clients-{KAFKA_VERSION}.jar"
        victim.write_bytes(victim.read_bytes() + b"\0")
        with pytest.raises(KafkaJarsError, match="kafka-clients"):
            verify_jars(libs)

    def test_a_missing_or_extra_jar_is_refused(self, tmp_path: Path) -> None:
        """A jar too few or too many: refused (the classpath is exactly the listing)."""
        libs = tmp_path / "libs"
        shutil.copytree(kafka_libs(), libs)
        (libs / "evil.jar").write_bytes(b"PK")
        with pytest.raises(KafkaJarsError, match=r"evil\.jar"):
            verify_jars(libs)
        (libs / "evil.jar").unlink()
        next(libs.glob("snappy*.jar")).unlink()
        with pytest.raises(KafkaJarsError, match="snappy"):
            verify_jars(libs)

    def test_no_folder_says_make_kafka(self, tmp_path: Path) -> None:
        """Without the folder the error says how to get it."""
        with pytest.raises(KafkaJarsError, match="make kafka"):
            verify_jars(tmp_path / "nothing", JARS_SHA256)


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


class TestKafkaServer:
    async def test_starts_serves_a_group_and_stops_clean(self, tmp_path: Path) -> None:
        """A node on a free port: topics, an idempotent producer, a consumer group; stopped, its folder is gone."""
        server = KafkaServer("127.0.0.1", free_port(), log_path=tmp_path / "kafka.log")
        await server.start(timeout=120)
        base = server.cluster.base_dir
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=server.bootstrap)
            await admin.start()
            await admin.create_topics([NewTopic("t", 2, 1)])
            await admin.close()
            producer = AIOKafkaProducer(bootstrap_servers=server.bootstrap, enable_idempotence=True)
            await producer.start()
            await producer.send_and_wait("t", b"hello", key=b"k")
            await producer.stop()
            consumer = AIOKafkaConsumer(
                "t", bootstrap_servers=server.bootstrap, group_id="g", auto_offset_reset="earliest"
            )
            await consumer.start()
            record = await asyncio.wait_for(consumer.getone(), 60)
            await consumer.commit()
            await consumer.stop()
            assert record.value == b"hello"
        finally:
            server.stop()
        assert server.proc is None
        assert not base.exists()
        assert "Kafka Server started" in (tmp_path / "kafka.log").read_text()
