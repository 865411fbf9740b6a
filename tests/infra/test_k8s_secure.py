"""infra/k8s/overlays/secure: each stage logs in as its own KafkaUser over SASL_SSL, and KEDA as llmops-keda."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from shared.stack.embedded import STAGES
from tests.infra.kustomize import build
from tests.infra.test_k8s_manifests import K8S, container_env, find, one, rendered, wired_stage

CLUSTER_CA = ("llmops-cluster-ca-cert", "ca.crt")  # Strimzi's cluster CA Secret and key
Obj = dict[str, Any]


def config() -> dict[str, str]:
    (cm,) = [o for o in rendered("secure") if o["kind"] == "ConfigMap" and "LLMOPS_KAFKA_BOOTSTRAP" in o["data"]]
    return dict(cm["data"])


def secret_file(pod: Obj, container: Obj, path: str) -> tuple[str, str]:
    """(Secret name, key) a container's file comes from, by its mounts and the pod's secret volumes."""
    folder, name = str(PurePosixPath(path).parent), PurePosixPath(path).name
    (mount,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == folder]
    assert mount.get("readOnly") is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (item,) = [i for i in volume["secret"]["items"] if i["path"] == name]
    assert volume["secret"].get("defaultMode", 0o644) & 0o040, "the pod's fsGroup must be able to read it"
    return volume["secret"]["secretName"], item["key"]


class TestStagesLogIn:
    def test_config_turns_sasl_ssl_on(self) -> None:
        """The shared config: SASL_SSL with SCRAM-SHA-512 on the TLS listener, password and CA from files."""
        data = config()
        assert data["LLMOPS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert data["LLMOPS_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert data["LLMOPS_KAFKA_BOOTSTRAP"] == "llmops-kafka-bootstrap:9093"
        assert "LLMOPS_KAFKA_SASL_PASSWORD" not in data

    @pytest.mark.parametrize("stage", STAGES)
    def test_every_container_mounts_its_own_user_secret_and_the_ca(self, stage: str) -> None:
        """Main and init containers (all load the settings) read the password of KafkaUser llmops-<stage> and the CA."""
        deployment = one(rendered("secure"), "Deployment", stage)
        pod = deployment["spec"]["template"]["spec"]
        data = config()
        containers = pod["containers"] + pod.get("initContainers", [])
        assert containers
        for container in containers:
            env = {v["name"]: v.get("value") for v in container.get("env", [])}
            assert env["LLMOPS_KAFKA_SASL_USERNAME"] == f"llmops-{stage}", container["name"]
            password = secret_file(pod, container, data["LLMOPS_KAFKA_SASL_PASSWORD_FILE"])
            assert password == (f"llmops-{stage}", "password")
            assert secret_file(pod, container, data["LLMOPS_KAFKA_SSL_CAFILE"]) == CLUSTER_CA

    @pytest.mark.parametrize("stage", STAGES)
    def test_the_user_exists_and_the_settings_load(self, stage: str) -> None:
        """The principal is a KafkaUser of the overlay, and the stage's real settings accept the environment."""
        users = {u["metadata"]["name"] for u in find(rendered("secure"), "KafkaUser")}
        assert f"llmops-{stage}" in users
        wired = wired_stage(stage, container_env("secure", stage))
        kafka = wired.settings.core.kafka
        assert kafka.security_protocol == "SASL_SSL"
        assert kafka.sasl_username == f"llmops-{stage}"
        assert kafka.sasl_password is not None

    def test_the_overlay_brings_the_same_users_as_infra_security(self) -> None:
        """The KafkaUsers rendered with the overlay are those of infra/k8s/security, in the stages' namespace."""
        own = {u["metadata"]["name"]: u for u in build(K8S / "security")}
        overlay = {u["metadata"]["name"]: u for u in find(rendered("secure"), "KafkaUser")}
        assert overlay == own
        assert {u["metadata"]["namespace"] for u in overlay.values()} == {"llmops"}


class TestKeda:
    def test_triggers_are_production_s_plus_tls_and_credentials(self) -> None:
        """Same topic, group and threshold as production; the TLS bootstrap; the llmops-keda authentication."""
        for stage in STAGES:
            secure = one(rendered("secure"), "ScaledObject", stage)
            production = one(rendered("production"), "ScaledObject", stage)
            (trigger,) = secure["spec"]["triggers"]
            (expected,) = production["spec"]["triggers"]
            assert trigger["metadata"] == {
                **expected["metadata"],
                "bootstrapServers": config()["LLMOPS_KAFKA_BOOTSTRAP"],
            }
            assert trigger["authenticationRef"] == {"name": "llmops-keda"}
            assert {k: v for k, v in secure["spec"].items() if k != "triggers"} == {
                k: v for k, v in production["spec"].items() if k != "triggers"
            }

    def test_keda_logs_in_as_llmops_keda_over_tls(self) -> None:
        """SCRAM-SHA-512 with TLS as llmops-keda, its password from that KafkaUser's Secret, the cluster CA."""
        objs = rendered("secure")
        auth = one(objs, "TriggerAuthentication", "llmops-keda")
        refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
        assert refs["password"] == ("llmops-keda", "password")
        assert refs["ca"] == CLUSTER_CA
        assert one(objs, "KafkaUser", "llmops-keda")
        values = {}
        for parameter in ("sasl", "tls", "username"):
            name, key = refs[parameter]
            values[parameter] = one(objs, "Secret", name)["stringData"][key]
        assert values == {"sasl": "scram_sha512", "tls": "enable", "username": "llmops-keda"}


def test_every_secret_a_pod_reads_is_made_by_strimzi() -> None:
    """The pods' Secret volumes name KafkaUsers (Strimzi writes their passwords) or the cluster CA, nothing else.

    The one exception: the gateway's API keys (llmops-gateway-auth), which the operator creates.
    """
    objs = rendered("secure")
    users = {u["metadata"]["name"] for u in find(objs, "KafkaUser")}
    for workload in find(objs, "Deployment") + find(objs, "StatefulSet"):
        allowed = (
            users | {CLUSTER_CA[0]} | ({"llmops-gateway-auth"} if workload["metadata"]["name"] == "gateway" else set())
        )
        for volume in workload["spec"]["template"]["spec"]["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] in allowed
