"""The secure compose profile (docker-compose.secure.yml, infra/secure), checked offline.

The ACL source agrees with the Strimzi KafkaUsers; every service logs in as its own principal over SASL_SSL with
settings the real ``KafkaSettings`` accept; the broker has no open listener; the generated CA and keystore are
valid and private keys never land in git; kafka-init.sh turns every ACL line into a Kafka CLI call.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.knowledge.settings import KnowledgeSettings
from shared.runtime.security import client_security_kwargs
from shared.runtime.settings import CoreSettings, KafkaSettings, TopicSettings
from shared.stack.embedded import STAGES
from tests.infra.helpers import ROOT, compose, settings_env

SECURE = ROOT / "docker-compose.secure.yml"
ACLS = ROOT / "infra" / "secure" / "kafka-acls.txt"
GEN_CERTS = ROOT / "infra" / "secure" / "gen-certs.sh"
KAFKA_INIT = ROOT / "infra" / "secure" / "kafka-init.sh"
GENERATED = "./infra/secure/generated"
USERS_YAML = ROOT / "infra" / "k8s" / "security" / "kafka-users.yaml"
NOT_IN_COMPOSE = {"llmops-keda"}  # KEDA runs on Kubernetes only
TOPICS_PRINCIPAL = "llmops-topics"
# Every service that talks to Kafka, and the principal it must log in as.
PRINCIPALS = {
    **{stage: f"llmops-{stage}" for stage in STAGES},
    "inference-gpu": "llmops-inference",
    "gateway": "llmops-gateway",
    "topics": TOPICS_PRINCIPAL,
}

Acl = tuple[str, str, str, str, str]  # principal, operation, pattern, resource type, name


@cache
def secure() -> dict[str, Any]:
    return dict(yaml.safe_load(SECURE.read_text()))


def acl_file() -> set[Acl]:
    entries = set()
    for line in ACLS.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            principal, operation, pattern, resource, name = line.split()
            entries.add((principal, operation, pattern, resource, name))
    return entries


def strimzi_acls() -> set[Acl]:
    """kafka-users.yaml in the ACL file's terms (``prefix`` is kafka-acls.sh's ``prefixed``)."""
    entries = set()
    for doc in yaml.safe_load_all(USERS_YAML.read_text()):
        user = doc["metadata"]["name"]
        for acl in doc["spec"]["authorization"]["acls"]:
            res = acl["resource"]
            pattern = {"literal": "literal", "prefix": "prefixed"}[res.get("patternType", "literal")]
            name = "kafka-cluster" if res["type"] == "cluster" else res["name"]
            entries |= {(user, op, pattern, res["type"], name) for op in acl["operations"]}
    return entries


def merged_env(service: str) -> dict[str, str]:
    """The service's environment: docker-compose.yml's, then the override's on top (compose merges maps)."""
    base = compose()["services"][service].get("environment", {})
    return {k: str(v) for k, v in {**base, **secure()["services"][service].get("environment", {})}.items()}


def mounts(service: str) -> dict[str, str]:
    """The override's bind mounts of a service: container path -> host path."""
    found = {}
    for volume in secure()["services"][service].get("volumes", []):
        host, container = volume.split(":")[:2]
        found[container] = host
    return found


class TestAcls:
    def test_same_users_and_acls_as_the_kafka_users(self) -> None:
        """The ACL file is kafka-users.yaml (less KEDA's user), plus the topic creator's rights, both ways."""
        strimzi = {a for a in strimzi_acls() if a[0] not in NOT_IN_COMPOSE}
        compose_only = {a for a in acl_file() if a[0] == TOPICS_PRINCIPAL}
        assert acl_file() - compose_only == strimzi

    def test_the_topic_creator_may_only_create_and_describe_the_pipeline_topics(self) -> None:
        """llmops-topics: Create and Describe on each topic the topics job creates (its TopicSettings), nothing else."""
        with settings_env(
            {k: v for k, v in merged_env("topics").items() if k.startswith(("LLMOPS_TOPIC_", "LLMOPS_TENANTS"))}
        ):
            created = CoreSettings().topics.all()
        assert TopicSettings().tenant_requests("acme") in created  # the example tenant's request topic
        expected = {
            (TOPICS_PRINCIPAL, op, "literal", "topic", topic) for topic in created for op in ("Create", "Describe")
        }
        assert {a for a in acl_file() if a[0] == TOPICS_PRINCIPAL} == expected

    def test_every_principal_a_service_uses_has_acls(self) -> None:
        """Each principal the compose services log in as is created (it is in the ACL file)."""
        assert set(PRINCIPALS.values()) <= {a[0] for a in acl_file()}


class TestServices:
    @pytest.mark.parametrize("service", sorted(PRINCIPALS))
    def test_each_service_logs_in_as_its_own_principal(self, service: str) -> None:
        """SASL_SSL with SCRAM-SHA-512, its own user, its own password file and the CA mounted from generated/."""
        env = merged_env(service)
        assert env["LLMOPS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["LLMOPS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["LLMOPS_KAFKA_SASL_USERNAME"] == PRINCIPALS[service]
        assert "LLMOPS_KAFKA_SASL_PASSWORD" not in env  # never a literal: a file
        found = mounts(service)
        assert found[env["LLMOPS_KAFKA_SASL_PASSWORD_FILE"]] == f"{GENERATED}/passwords/{PRINCIPALS[service]}"
        assert found[env["LLMOPS_KAFKA_SSL_CAFILE"]] == f"{GENERATED}/ca.crt"

    def test_every_kafka_client_in_compose_is_covered(self) -> None:
        """No service of docker-compose.yml that reaches Kafka is left on PLAINTEXT (models never connects)."""
        for name, svc in compose()["services"].items():
            if "LLMOPS_KAFKA_BOOTSTRAP" in str(svc.get("environment", {})):
                assert name in PRINCIPALS, name

    def test_settings_accept_the_environment(self, tmp_path: Path) -> None:
        """The real KafkaSettings load a service's environment, with the files in place, into a TLS+SCRAM client."""
        out = tmp_path / "generated"
        generate(out)
        env = merged_env("preprocess")
        env["LLMOPS_KAFKA_SASL_PASSWORD_FILE"] = str(out / "passwords" / "llmops-preprocess")
        env["LLMOPS_KAFKA_SSL_CAFILE"] = str(out / "ca.crt")
        with settings_env({k: v for k, v in env.items() if k.startswith("LLMOPS_KAFKA_")}):
            settings = KafkaSettings()
        kwargs = client_security_kwargs(settings)
        assert kwargs["sasl_plain_username"] == "llmops-preprocess"
        assert kwargs["sasl_plain_password"] == (out / "passwords" / "llmops-preprocess").read_text().strip()
        assert kwargs["ssl_context"].check_hostname  # the broker's name is checked against its certificate
        assert [c["subject"] for c in kwargs["ssl_context"].get_ca_certs()] == [((("commonName", "llmops-ca"),),)]

    def test_llmops_containers_are_locked_down(self) -> None:
        """Every container of the llmops image: read-only root, tmpfs for /tmp and the data dir, no capabilities."""
        llmops = [name for name, svc in compose()["services"].items() if svc["image"].startswith("llmops:")]
        assert set(PRINCIPALS) | {"models"} <= set(llmops)
        for name in llmops:
            svc = secure()["services"][name]
            assert svc["read_only"] is True, name
            assert svc["cap_drop"] == ["ALL"], name
            assert "no-new-privileges:true" in svc["security_opt"], name
            data_dir = merged_env(name).get("LLMOPS_DATA_DIR", "/data")
            assert {"/tmp", data_dir} <= set(svc["tmpfs"]), name  # noqa: S108 - mount points, not files

    def test_topics_wait_for_the_users(self) -> None:
        """Topic creation (and so every service) waits until the users and ACLs exist."""
        depends = secure()["services"]["topics"]["depends_on"]
        assert depends["kafka-users"]["condition"] == "service_completed_successfully"
        for stage in STAGES:
            assert compose()["services"][stage]["depends_on"]["topics"]["condition"] == "service_completed_successfully"

    def test_gateway_needs_a_real_auth_file(self) -> None:
        """The secure profile does not fall back to the key-less example auth file."""
        (volume,) = [v for v in secure()["services"]["gateway"]["volumes"] if "gateway-auth" in v]
        assert volume.startswith("${GATEWAY_AUTH_FILE:?")
        assert "auth.example" not in volume


class TestBroker:
    def test_clients_reach_only_the_sasl_ssl_listener(self) -> None:
        """Every listener but SASL_SSL binds to 127.0.0.1; the services' bootstrap is the advertised SASL_SSL one."""
        env = merged_env("kafka")
        protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        for listener in env["KAFKA_LISTENERS"].split(","):
            name, _, address = listener.partition("://")
            if protocols[name] != "SASL_SSL":
                assert address.startswith("127.0.0.1:"), listener
        advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        assert advertised["SASL_SSL"] == merged_env("preprocess")["LLMOPS_KAFKA_BOOTSTRAP"]
        assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == merged_env("preprocess")["LLMOPS_KAFKA_SASL_MECHANISM"]
        assert "PLAINTEXT" not in env["KAFKA_ADVERTISED_LISTENERS"].replace("ADMIN://127.0.0.1", "")

    def test_nothing_is_allowed_without_an_acl(self) -> None:
        """The KRaft authorizer is on and denies what no ACL allows; only the loopback principal is super."""
        env = merged_env("kafka")
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        assert env["KAFKA_SUPER_USERS"] == "User:ANONYMOUS"  # reachable only on the 127.0.0.1 listeners

    def test_broker_files_come_from_generated(self) -> None:
        """The keystore and its password are mounted from generated/, the JAAS file holds no password."""
        found = mounts("kafka")
        assert found["/etc/kafka/secrets"] == f"{GENERATED}/kafka"
        jaas = (ROOT / found["/etc/kafka/jaas/kafka_server_jaas.conf"]).read_text()
        assert "ScramLoginModule required;" in jaas
        assert "password" not in jaas.lower().replace("no password here", "")

    def test_the_users_job_runs_inside_the_broker_network_namespace(self) -> None:
        """kafka-users reaches the loopback ADMIN listener by sharing the broker's namespace, after it is healthy."""
        job = secure()["services"]["kafka-users"]
        assert job["network_mode"] == "service:kafka"
        assert job["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert job["image"] == compose()["services"]["kafka"]["image"]
        targets = {v.split(":")[1] for v in job["volumes"]}
        assert {"/opt/llmops/kafka-init.sh", "/opt/llmops/kafka-acls.txt", "/run/secrets/kafka-users"} <= targets


class TestGrafana:
    def test_admin_password_from_a_file_and_never_the_default(self) -> None:
        """Grafana reads its admin password from a generated file and refuses to start on an empty or 'admin' one."""
        grafana = secure()["services"]["grafana"]
        path = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"]
        assert mounts("grafana")[path] == f"{GENERATED}/grafana-admin-password"
        script = grafana["entrypoint"][-1]
        assert '[ -z "$$p" ]' in script
        assert '[ "$$p" = admin ]' in script
        assert "exit 1" in script
        assert script.rstrip().endswith("exec /run.sh")


def generate(out: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    subprocess.run(["bash", str(GEN_CERTS), str(out)], check=True, capture_output=True)


class TestQdrant:
    def test_qdrant_requires_the_generated_key(self) -> None:
        """Qdrant's config (service.api_key) is mounted from the generated file; no key in compose itself."""
        assert mounts("qdrant")["/qdrant/config/local.yaml"] == f"{GENERATED}/qdrant/local.yaml"
        assert "QDRANT__SERVICE__API_KEY" not in str(secure()["services"]["qdrant"])

    def test_grounding_reads_the_same_key_from_its_file(self, tmp_path: Path) -> None:
        """grounding: LLMOPS_QDRANT_API_KEY_FILE mounted from generated/; the real settings read the key Qdrant has."""
        env = merged_env("grounding")
        assert "LLMOPS_QDRANT_API_KEY" not in env  # never a literal: a file
        assert mounts("grounding")[env["LLMOPS_QDRANT_API_KEY_FILE"]] == f"{GENERATED}/qdrant-api-key"
        out = tmp_path / "generated"
        generate(out)
        qdrant_env = {k: v for k, v in env.items() if k.startswith("LLMOPS_QDRANT_")}
        qdrant_env["LLMOPS_QDRANT_API_KEY_FILE"] = str(out / "qdrant-api-key")
        with settings_env(qdrant_env):
            knowledge = KnowledgeSettings()
        assert knowledge.url
        assert knowledge.api_key is not None
        config = yaml.safe_load((out / "qdrant" / "local.yaml").read_text())
        assert knowledge.api_key.get_secret_value() == config["service"]["api_key"]
        assert len(config["service"]["api_key"]) >= 32


class TestTenantTopics:
    def test_tenants_are_named_by_their_topics(self) -> None:
        """Every Kafka client knows the tenants' request topics; preprocess takes tenants from them (the shared
        topic carries only the default tenant) and the gateway sends each tenant's requests to its own topic."""
        configs = {merged_env(service).get("LLMOPS_TENANTS") for service in PRINCIPALS}
        assert len(configs) == 1  # one tenant configuration, the same for every client
        assert merged_env("preprocess")["LLMOPS_PREPROCESS_TENANT_FROM_TOPIC"] == "true"
        assert merged_env("gateway")["LLMOPS_GATEWAY_TENANT_TOPICS"] == "true"
        with settings_env({k: v for k, v in merged_env("preprocess").items() if k.startswith("LLMOPS_TENANTS")}):
            assert CoreSettings().topics.tenant_request_topics() == {"llmops.requests.acme": "acme"}


class TestGenCerts:
    def test_makes_every_file_the_profile_mounts(self, tmp_path: Path) -> None:
        """CA, broker keystore and password, a password per principal, Grafana's; private parts kept private."""
        out = tmp_path / "generated"
        generate(out)
        principals = {a[0] for a in acl_file()}
        assert {p.name for p in (out / "passwords").iterdir()} == principals
        made = ("ca.crt", "kafka/kafka.keystore.p12", "kafka/keystore-password", "grafana-admin-password")
        for name in (*made, "qdrant-api-key", "qdrant/local.yaml"):
            assert (out / name).stat().st_size > 0, name
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        assert stat.S_IMODE((out / "ca").stat().st_mode) == 0o700
        assert stat.S_IMODE((out / "ca" / "ca.key").stat().st_mode) == 0o600
        keys = [p for p in out.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
        assert keys == [out / "ca" / "ca.key"]  # the broker's key exists only inside the keystore
        passwords = {(out / "passwords" / p).read_text() for p in principals}
        assert len(passwords) == len(principals)  # all different

    def test_the_broker_certificate_is_valid_for_the_bootstrap_host(self, tmp_path: Path) -> None:
        """The keystore opens with its password; its certificate is signed by the CA and names the host `kafka`."""
        x509 = pytest.importorskip("cryptography.x509")
        pkcs12 = pytest.importorskip("cryptography.hazmat.primitives.serialization.pkcs12")
        out = tmp_path / "generated"
        generate(out)
        password = (out / "kafka" / "keystore-password").read_text().strip().encode()
        store = pkcs12.load_pkcs12((out / "kafka" / "kafka.keystore.p12").read_bytes(), password)
        assert store.key is not None
        assert store.cert is not None
        cert = store.cert.certificate
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "kafka" in names.get_values_for_type(x509.DNSName)
        subprocess.run(
            ["openssl", "verify", "-CAfile", str(out / "ca.crt"), "/dev/stdin"],
            input=cert.public_bytes(pytest.importorskip("cryptography.hazmat.primitives.serialization").Encoding.PEM),
            check=True,
            capture_output=True,
        )

    def test_running_again_keeps_what_exists(self, tmp_path: Path) -> None:
        """A second run changes nothing it made before (delete the folder to rotate)."""
        out = tmp_path / "generated"
        generate(out)
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        generate(out)
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    def test_generated_files_are_ignored_by_git_and_no_key_is_committed(self) -> None:
        """infra/secure/generated is git-ignored, and no tracked deployment file holds a private key.

        (Elsewhere, the secret detectors' tests and evals hold fake PEM headers on purpose.)
        """
        if shutil.which("git") is None or not (ROOT / ".git").exists():
            pytest.skip("not a git checkout")
        ignored = subprocess.run(
            ["git", "-C", str(ROOT), "check-ignore", "-q", "infra/secure/generated/ca/ca.key"], check=False
        )
        assert ignored.returncode == 0
        tracked = subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "grep",
                "--untracked",
                "-l",
                "-e",
                "BEGIN .*PRIVATE KEY",
                "--",
                "infra",
                "docker-compose*.yml",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert tracked == []


class TestKafkaInit:
    def test_creates_every_user_and_every_acl(self, tmp_path: Path) -> None:
        """With stand-in Kafka CLIs: one SCRAM credential per principal, every ACL line added, no password echoed."""
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        log = tmp_path / "calls"
        for tool in ("kafka-configs.sh", "kafka-acls.sh"):
            (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
            (bin_dir / tool).chmod(0o755)
        passwords = tmp_path / "passwords"
        passwords.mkdir()
        principals = sorted({a[0] for a in acl_file()})
        for principal in principals:
            (passwords / principal).write_text(f"pw-{principal}\n")
        env = {
            **os.environ,
            "KAFKA_BIN": str(bin_dir),
            "KAFKA_ACLS_FILE": str(ACLS),
            "KAFKA_USER_PASSWORDS": str(passwords),
        }
        result = subprocess.run(["bash", str(KAFKA_INIT)], env=env, capture_output=True, text=True, check=True)
        assert "pw-" not in result.stdout + result.stderr
        calls = log.read_text().splitlines()
        scram = [c for c in calls if c.startswith("kafka-configs.sh")]
        assert len(scram) == len(principals)
        for principal in principals:
            assert any(f"--entity-name {principal} " in c and f"password=pw-{principal}]" in c for c in scram)
        added = set()
        for call in calls:
            if not call.startswith("kafka-acls.sh"):
                continue
            words = call.split()
            user = words[words.index("--allow-principal") + 1].removeprefix("User:")
            operation = words[words.index("--operation") + 1]
            pattern = words[words.index("--resource-pattern-type") + 1]
            for i, word in enumerate(words):
                if word in {"--topic", "--group"}:
                    added.add((user, operation, pattern, word.removeprefix("--"), words[i + 1]))
                elif word == "--cluster":
                    added.add((user, operation, pattern, "cluster", "kafka-cluster"))
        assert added == acl_file()

    def test_a_missing_password_stops_it(self, tmp_path: Path) -> None:
        """Without a principal's password file the job fails (and compose retries it) instead of skipping the user."""
        env = {
            **os.environ,
            "KAFKA_BIN": str(tmp_path),
            "KAFKA_USER_PASSWORDS": str(tmp_path),
            "KAFKA_ACLS_FILE": str(ACLS),
        }
        result = subprocess.run(["bash", str(KAFKA_INIT)], env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 1
        assert "run infra/secure/gen-certs.sh" in result.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
class TestDockerComposeConfig:
    def run(self, *args: str, gateway_auth: str | None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "GATEWAY_AUTH_FILE"}
        if gateway_auth is not None:
            env["GATEWAY_AUTH_FILE"] = gateway_auth
        command = ["docker-compose", *args, "-f", str(ROOT / "docker-compose.yml"), "-f", str(SECURE), "config"]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)

    def test_the_override_validates(self) -> None:
        """docker-compose accepts the base plus the secure override, with and without the gpu profile."""
        for extra in ([], ["--profile", "gpu"]):
            result = self.run(*extra, gateway_auth=str(ROOT / "infra/gateway/auth.example.yaml"))
            assert result.returncode == 0, result.stderr
            merged = yaml.safe_load(result.stdout)["services"]
            assert merged["preprocess"]["environment"]["LLMOPS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
            assert merged["topics"]["depends_on"]["kafka-users"]["condition"] == "service_completed_successfully"
            assert merged["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
            assert "kafka-data-secure:/var/lib/kafka/data" in " ".join(merged["kafka"]["volumes"])

    def test_without_a_gateway_auth_file_it_refuses(self) -> None:
        """No GATEWAY_AUTH_FILE: compose stops with the reason instead of mounting the example."""
        result = self.run(gateway_auth=None)
        assert result.returncode != 0
        assert "GATEWAY_AUTH_FILE" in result.stderr
