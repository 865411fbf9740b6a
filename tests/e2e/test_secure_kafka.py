"""The secure profile on the Maven-built Apache Kafka: SASL/SCRAM over TLS, the principals and ACLs of
infra/secure/kafka-acls.txt, every refusal made by the broker itself, every permission shown to work.

The broker: a SASL_SSL listener (SCRAM-SHA-512, the certificate infra/secure/gen-certs.sh makes, the
StandardAuthorizer, nothing allowed that no ACL allows) and a loopback ADMIN listener for the broker itself
(shared/stack/kafka_nodes.py ``SecureListener``), as in docker-compose.secure.yml. Every principal gets the password
gen-certs.sh made for it; the ACLs are read from kafka-acls.txt (shared/stack/acls.py).

- The ACL matrix: every principal × every pipeline topic × Read and Write, tried for real with the principal's
  own credentials; the broker's answer must be what kafka-acls.txt says, cell by cell (docs/security.md).
- An unauthenticated client, a wrong password and an unknown user are refused with one clear error.
- The whole pipeline runs on it, each service as its own principal, the topics created by `llmops-topics`;
  the gateway's principal asks through the shared request topic and reads its own reply topic, tenant acme
  through its own topics.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import GroupAuthorizationFailedError

from shared.client import LlmopsClient
from shared.runtime.security import BrokerAuthError, check_broker_access, client_security_kwargs
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.acls import Acl, apply_acls, grants, matrix_markdown, principals, read_acls
from shared.stack.brokers import client_env
from shared.stack.embedded import STAGES, EmbeddedStack
from shared.stack.kafka import KafkaServer
from shared.stack.kafka_nodes import SecureListener
from shared.stack.processes import free_port
from shared.stack.topics import ensure_topics
from tests.conftest import SMALL_MODEL
from tests.infra.helpers import ROOT

pytestmark = pytest.mark.e2e

ACLS = read_acls(ROOT / "infra" / "secure" / "kafka-acls.txt")
TENANTS = ["acme"]
TOPICS = TopicSettings(request_tenants=TENANTS)
#: Every topic of the pipeline (the names the ACL file is written for), and a tenant's and a gateway's reply topic.
MATRIX_TOPICS = [*TOPICS.all(), TOPICS.name("responses.acme"), TOPICS.name("responses.gateway-secure")]


@dataclass(frozen=True)
class SecureKafka:
    """A running secure broker: where it listens, the CA its certificate is signed by, each principal's password."""

    bootstrap: str
    admin_bootstrap: str
    ca: Path
    passwords: Path

    def settings(self, principal: str, **overrides: object) -> KafkaSettings:
        """Client settings that log in as ``principal`` over SASL_SSL."""
        fields: dict[str, object] = {
            "bootstrap": self.bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": principal,
            "sasl_password_file": self.passwords / principal,
            "ssl_cafile": self.ca,
            "request_timeout_ms": 10000,
        }
        return KafkaSettings(**(fields | overrides))  # type: ignore[arg-type]

    def service_env(self, principal: str) -> dict[str, str]:
        """The same, as a service's environment."""
        return {
            "LLMOPS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "LLMOPS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "LLMOPS_KAFKA_SASL_USERNAME": principal,
            "LLMOPS_KAFKA_SASL_PASSWORD_FILE": str(self.passwords / principal),
            "LLMOPS_KAFKA_SSL_CAFILE": str(self.ca),
        }


@pytest.fixture(scope="module")
async def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureKafka]:
    """gen-certs.sh's CA, keystore and passwords; the broker with every principal; the ACLs; the topics."""
    out = tmp_path_factory.mktemp("secure")
    await asyncio.to_thread(
        subprocess.run,
        ["bash", str(ROOT / "infra" / "secure" / "gen-certs.sh"), str(out)],
        check=True,
        capture_output=True,
    )
    users = {name: (out / "passwords" / name).read_text().strip() for name in principals(ACLS)}
    broker = KafkaServer(
        "127.0.0.1",
        free_port(),
        log_path=out / "logs" / "kafka.log",
        secure=SecureListener(out / "kafka" / "kafka.keystore.p12", out / "kafka" / "keystore-password", users),
    )
    await broker.start(timeout=180)
    try:
        await apply_acls(broker.admin_bootstrap, ACLS)
        secure = SecureKafka(broker.bootstrap, broker.admin_bootstrap, out / "ca.crt", out / "passwords")
        # The topics job's principal creates the pipeline's topics (Create, Describe: nothing else).
        await ensure_topics(secure.settings("llmops-topics"), TOPICS.all(), TOPICS.configs())
        # Answer topics of a tenant and of a gateway replica: the operator's (ADMIN listener).
        await ensure_topics(KafkaSettings(bootstrap=broker.admin_bootstrap), MATRIX_TOPICS)
        yield secure
    finally:
        broker.stop()


def allowed(principal: str, operation: str, topic: str) -> bool:
    """What kafka-acls.txt grants: an ALLOW for this principal and operation whose pattern matches the topic."""
    return grants(ACLS, principal, operation, topic)


def _librdkafka_config(secure: SecureKafka, principal: str) -> dict[str, object]:
    """librdkafka's settings to log in as ``principal`` (the probes: it reports a refused ACL per request)."""
    return {
        "bootstrap.servers": secure.bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": principal,
        "sasl.password": (secure.passwords / principal).read_text().strip(),
        "ssl.ca.location": str(secure.ca),
    }


def _write_cells(secure: SecureKafka, principal: str, topics: list[str]) -> dict[str, bool]:
    from confluent_kafka import KafkaError, Producer

    outcome: dict[str, bool] = {}

    def delivered(err: object, msg: object) -> None:
        topic = msg.topic()  # type: ignore[attr-defined]
        if err is None:
            outcome[topic] = True
        elif err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:  # type: ignore[attr-defined]
            outcome[topic] = False
        else:
            raise AssertionError(f"{principal} → {topic}: {err}")

    # A plain producer: Write on the topic alone (an idempotent one needs more than the cell being tried).
    producer = Producer(
        _librdkafka_config(secure, principal) | {"enable.idempotence": False, "message.timeout.ms": 20000}
    )
    for topic in topics:
        # A value no stage can parse (a DLQ record if a stage reads it): the probe must not be work.
        # Keyed: a compacted topic (the cache) refuses records without a key.
        producer.produce(topic, b"acl-probe", key=b"acl-probe", partition=0, on_delivery=delivered)
    assert producer.flush(60) == 0
    return outcome


def _read_cell(secure: SecureKafka, principal: str, topic: str) -> bool:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    # Assigned at an explicit offset: no consumer group is joined or asked (topic Read alone is tried).
    consumer = Consumer(
        _librdkafka_config(secure, principal)
        | {"group.id": f"probe-{uuid.uuid4().hex}", "enable.auto.commit": False, "enable.partition.eof": True}
    )
    try:
        # Without Describe (which Read and Write imply) the topic's metadata is refused outright; librdkafka then
        # waits for the topic as if it did not exist yet, so that answer is read from the metadata.
        metadata = consumer.list_topics(topic, timeout=20).topics[topic]
        if metadata.error is not None and metadata.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            return False
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is None or err.code() == KafkaError._PARTITION_EOF:
                return True
            if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                return False
        raise AssertionError(f"{principal} reading {topic}: no answer from the broker")
    finally:
        consumer.close()


async def may_write(secure: SecureKafka, principal: str, topics: list[str]) -> dict[str, bool]:
    """Whether the broker takes a record from ``principal`` on each topic."""
    return await asyncio.to_thread(_write_cells, secure, principal, topics)


async def may_read(secure: SecureKafka, principal: str, topic: str) -> bool:
    """Whether the broker lets ``principal`` fetch a topic's partition."""
    return await asyncio.to_thread(_read_cell, secure, principal, topic)


class TestAclMatrix:
    @pytest.mark.parametrize("principal", principals(ACLS))
    async def test_write_cells(self, secure_kafka: SecureKafka, principal: str) -> None:
        """Each topic takes this principal's records exactly when kafka-acls.txt gives it Write there."""
        actual = await may_write(secure_kafka, principal, MATRIX_TOPICS)
        expected = {topic: allowed(principal, "Write", topic) for topic in MATRIX_TOPICS}
        assert actual == expected

    @pytest.mark.parametrize("principal", principals(ACLS))
    async def test_read_cells(self, secure_kafka: SecureKafka, principal: str) -> None:
        """Each topic can be fetched by this principal exactly when kafka-acls.txt gives it Read there."""
        actual = {topic: await may_read(secure_kafka, principal, topic) for topic in MATRIX_TOPICS}
        expected = {topic: allowed(principal, "Read", topic) for topic in MATRIX_TOPICS}
        assert actual == expected

    async def test_the_refusals_the_profile_promises(self, secure_kafka: SecureKafka) -> None:
        """A stage writes nothing outside its role; a tenant reads no one else's answers, writes no internal topic."""
        writes = await may_write(secure_kafka, "llmops-inference", [TOPICS.turns, TOPICS.checked, TOPICS.requests])
        assert writes == dict.fromkeys([TOPICS.turns, TOPICS.checked, TOPICS.requests], False)
        for other in (TOPICS.responses, TOPICS.name("responses.gateway-secure")):
            assert not await may_read(secure_kafka, "tenant-acme", other)
        internal = [TOPICS.requests, TOPICS.preprocessed, TOPICS.checked, TOPICS.generated, TOPICS.turns, TOPICS.dlq]
        assert await may_write(secure_kafka, "tenant-acme", internal) == dict.fromkeys(internal, False)
        assert await may_write(secure_kafka, "tenant-acme", [TOPICS.tenant_requests("acme")]) == {
            TOPICS.tenant_requests("acme"): True
        }

    async def test_a_group_needs_its_own_acl(self, secure_kafka: SecureKafka) -> None:
        """Safety may read its input topic but not join preprocess's consumer group."""
        settings = secure_kafka.settings("llmops-safety")
        consumer = AIOKafkaConsumer(
            TOPICS.grounded,
            bootstrap_servers=settings.bootstrap,
            group_id="llmops-preprocess",
            request_timeout_ms=5000,
            **client_security_kwargs(settings),
        )

        async def join() -> None:
            await consumer.start()
            await asyncio.wait_for(consumer.getone(), 20)

        try:
            with pytest.raises(GroupAuthorizationFailedError):
                await join()
        finally:
            await consumer.stop()


class TestAuthentication:
    async def test_plaintext_client_is_refused(self, secure_kafka: SecureKafka) -> None:
        """A client without TLS and SASL gets one clear error (the listener speaks TLS), not a retry loop."""
        with pytest.raises(BrokerAuthError, match="TLS"):
            await check_broker_access(KafkaSettings(bootstrap=secure_kafka.bootstrap), timeout_s=5, confirm_after_s=0.2)

    async def test_tls_without_sasl_is_refused(self, secure_kafka: SecureKafka) -> None:
        """TLS but no login: the broker closes the connection at the first request."""
        settings = KafkaSettings(bootstrap=secure_kafka.bootstrap, security_protocol="SSL", ssl_cafile=secure_kafka.ca)
        with pytest.raises(BrokerAuthError, match="requires authentication"):
            await check_broker_access(settings, timeout_s=5, confirm_after_s=0.2)

    async def test_wrong_password_is_refused(self, secure_kafka: SecureKafka, tmp_path: Path) -> None:
        """A known principal with the wrong password is refused by the broker."""
        wrong = tmp_path / "wrong"
        wrong.write_text(uuid.uuid4().hex)
        settings = secure_kafka.settings("llmops-safety", sasl_password_file=wrong)
        with pytest.raises(BrokerAuthError, match="llmops-safety"):
            await check_broker_access(settings, timeout_s=5, confirm_after_s=0.2)

    async def test_unknown_user_is_refused(self, secure_kafka: SecureKafka, tmp_path: Path) -> None:
        """A user the broker does not know is refused."""
        password = tmp_path / "password"
        password.write_text("whatever-password-1")
        settings = secure_kafka.settings("mallory", sasl_password_file=password)
        with pytest.raises(BrokerAuthError, match="mallory"):
            await check_broker_access(settings, timeout_s=5, confirm_after_s=0.2)


@pytest.fixture(scope="module")
async def secure_pipeline(
    secure_kafka: SecureKafka, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EmbeddedStack]:
    """The five services on the secure broker, each logged in as its own principal (as the secure profile runs)."""
    tenants = tmp_path_factory.mktemp("secure-tenants") / "tenants.yaml"
    tenants.write_text(
        'default_reply_topics: ["llmops.responses", "llmops.responses.gateway-*"]\n'
        'tenants:\n  acme: {reply_topics: ["llmops.responses.acme"]}\n'
    )
    core = CoreSettings(kafka=KafkaSettings(bootstrap=secure_kafka.bootstrap), default_model=SMALL_MODEL)
    common = {
        **client_env("kafka"),
        "LLMOPS_TOPIC_REQUEST_TENANTS": '["acme"]',
        "LLMOPS_QDRANT_PATH": str(tmp_path_factory.mktemp("secure-qdrant")),
    }
    per_stage = {stage: secure_kafka.service_env(f"llmops-{stage}") for stage in STAGES}
    per_stage["preprocess"] |= {
        "LLMOPS_PREPROCESS_TENANT_FROM_TOPIC": "true",
        "LLMOPS_PREPROCESS_TENANTS_PATH": str(tenants),
    }
    stack = EmbeddedStack(
        core.model_copy(update={"kafka": secure_kafka.settings("llmops-topics")}),
        external=True,
        log_dir=tmp_path_factory.mktemp("secure-logs"),
        extra_env=common,
        service_env=per_stage,
    )
    try:
        await stack.start(timeout=300)
        yield stack
    finally:
        stack.stop()


class TestSecurePipeline:
    async def test_the_gateway_principal_asks_and_reads_its_own_topic(
        self, secure_kafka: SecureKafka, secure_pipeline: EmbeddedStack
    ) -> None:
        """As llmops-gateway: a request on llmops.requests, its answer on llmops.responses.gateway-secure."""
        core = CoreSettings(kafka=secure_kafka.settings("llmops-gateway"), default_model=SMALL_MODEL)
        async with LlmopsClient(core, reply_to="llmops.responses.gateway-secure") as client:
            answer = await client.ask("Number 1:", max_tokens=1, timeout=120)
        assert answer.error is None
        assert [t.stage for t in answer.trail] == list(STAGES)

    async def test_tenant_acme_through_its_own_topics(
        self, secure_kafka: SecureKafka, secure_pipeline: EmbeddedStack
    ) -> None:
        """As tenant-acme: a request on llmops.requests.acme, its answer on llmops.responses.acme, tenant acme."""
        core = CoreSettings(
            kafka=secure_kafka.settings("tenant-acme", enable_idempotence=False),
            topics=TopicSettings(request_tenants=TENANTS),
        )
        async with LlmopsClient(core, reply_to="llmops.responses.acme", tenant="acme", tenant_topic=True) as client:
            answer = await client.ask("Number 2:", max_tokens=1, timeout=120)
        assert answer.error is None
        assert answer.tenant == "acme"


def test_the_acl_file_parses() -> None:
    """Every line of kafka-acls.txt is a well-formed ACL of a known principal."""
    assert ACLS
    assert all(isinstance(acl, Acl) for acl in ACLS)
    assert "tenant-acme" in principals(ACLS)


def test_docs_security_has_the_tested_matrix() -> None:
    """docs/security.md shows the matrix the tests above try cell by cell (regenerate it from kafka-acls.txt)."""
    assert matrix_markdown(ACLS, MATRIX_TOPICS) in (ROOT / "docs" / "security.md").read_text()
