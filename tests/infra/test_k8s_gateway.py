"""infra/k8s: the HTTP gateway's StatefulSet, Service, network policy and Kafka principal agree with its settings."""

from __future__ import annotations

from typing import Any

import certifi
import pytest

from services.gateway.settings import GatewaySettings
from shared.runtime.settings import TopicSettings
from tests.infra.helpers import known_variables, settings_env
from tests.infra.test_k8s_hardening import (
    DNS_PEER,
    KAFKA_PEER,
    PROMETHEUS_PEER,
    allowed,
    hardening_problems,
    key,
    policies_for,
)
from tests.infra.test_k8s_manifests import OVERLAYS, find, mounted_secret, one, rendered
from tests.infra.test_k8s_secure import CLUSTER_CA, secret_file

Obj = dict[str, Any]
PORT = 8000
AUTH_SECRET = ("llmops-gateway-auth", "auth.yaml")  # created by the operator, never in the manifests
INGRESS_NAMESPACE = {"kubernetes.io/metadata.name": "ingress-nginx"}  # any pod of the ingress controller


def gateway(overlay: str) -> Obj:
    found: Obj = one(rendered(overlay), "StatefulSet", "gateway")
    return found


def container(overlay: str) -> Obj:
    (main,) = [c for c in gateway(overlay)["spec"]["template"]["spec"]["containers"] if c["name"] == "gateway"]
    return main


def pod_env(overlay: str) -> dict[str, str]:
    """The LLMOPS_* environment of the gateway container: its ConfigMaps, then its own env (fieldRef: the pod name).

    Mounted password and CA files point at stand-ins (a random password, certifi's CA bundle).
    """
    objs = rendered(overlay)
    env: dict[str, str] = {}
    for source in container(overlay).get("envFrom", []):
        env |= one(objs, "ConfigMap", source["configMapRef"]["name"])["data"]
    for var in container(overlay).get("env", []):
        env[var["name"]] = var.get("value", "gateway-0")
    env |= {k: mounted_secret() for k in env if k.endswith("_PASSWORD_FILE")}
    env |= {k: certifi.where() for k in env if k.endswith("_CAFILE")}
    return {k: v for k, v in env.items() if k.startswith("LLMOPS_")}


def settings(overlay: str) -> GatewaySettings:
    with settings_env(pod_env(overlay)):
        return GatewaySettings()


@pytest.mark.parametrize("overlay", OVERLAYS)
class TestGateway:
    def test_it_runs_the_gateway_on_the_port_its_settings_serve(self, overlay: str) -> None:
        """The container runs services.gateway; port, probes and scrape annotations are the settings' port."""
        s = settings(overlay)
        assert (s.host, s.port) == ("0.0.0.0", PORT)
        main = container(overlay)
        pod = gateway(overlay)["spec"]["template"]
        assert main["command"] == ["python", "-m", "services.gateway"]
        assert main["ports"] == [{"name": "http", "containerPort": PORT}]
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": PORT}
        assert main["livenessProbe"]["httpGet"] == {"path": "/livez", "port": PORT}
        assert pod["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(PORT),
            "prometheus.io/path": "/metrics",
        }
        assert pod["spec"]["terminationGracePeriodSeconds"] > s.shutdown_timeout_s

    def test_config_is_made_of_real_settings(self, overlay: str) -> None:
        """Every LLMOPS_ variable the pod gets is a setting; JSON logs; the replica is the pod's stable name."""
        assert set(pod_env(overlay)) <= known_variables()
        s = settings(overlay)
        assert s.core.log_format == "json"
        assert s.replica == "gateway-0"
        assert s.reply_topic_name() == TopicSettings().name("responses.gateway-gateway-0")
        # a StatefulSet: pod names (and so reply topics) stay the same across restarts and rollouts
        assert gateway(overlay)["spec"]["serviceName"] == "gateway"

    def test_api_keys_come_from_a_secret_the_operator_creates(self, overlay: str) -> None:
        """LLMOPS_GATEWAY_AUTH_FILE is the mounted llmops-gateway-auth Secret, which no manifest defines."""
        path = str(settings(overlay).auth_file)
        assert secret_file(gateway(overlay)["spec"]["template"]["spec"], container(overlay), path) == AUTH_SECRET
        assert not find(rendered(overlay), "Secret", AUTH_SECRET[0])

    def test_service_selects_the_gateway_pods(self, overlay: str) -> None:
        """The Service selects the gateway's pods on its HTTP port; no ScaledObject (it does not consume a stage input)."""
        objs = rendered(overlay)
        service = one(objs, "Service", "gateway")
        labels = gateway(overlay)["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert [p["targetPort"] for p in service["spec"]["ports"]] == [PORT]
        assert not find(objs, "ScaledObject", "gateway")

    def test_it_is_locked_down(self, overlay: str) -> None:
        """The pod hardening contract of the stages holds for the gateway too."""
        assert hardening_problems(gateway(overlay)) == []

    def test_it_reaches_only_the_brokers_and_dns(self, overlay: str) -> None:
        """Egress: Kafka (9092, 9093) and DNS, nothing else (no model download, no Qdrant)."""
        labels = gateway(overlay)["spec"]["template"]["metadata"]["labels"]
        kafka = {(key(None, KAFKA_PEER), "TCP", port) for port in (9092, 9093)}
        dns = {(key(*DNS_PEER), proto, 53) for proto in ("UDP", "TCP")}
        assert allowed(policies_for(overlay, labels), "egress") == kafka | dns

    def test_only_the_ingress_controller_and_prometheus_connect_on_its_port(self, overlay: str) -> None:
        """Ingress: the ingress controller's namespace and Prometheus, on the HTTP port only."""
        labels = gateway(overlay)["spec"]["template"]["metadata"]["labels"]
        ingress_peer = key(INGRESS_NAMESPACE, {})
        assert allowed(policies_for(overlay, labels), "ingress") == {
            (ingress_peer, "TCP", PORT),
            (key(*PROMETHEUS_PEER), "TCP", PORT),
        }
        # not selected by the stages' policy (that one opens 8080 to Prometheus)
        assert labels["app.kubernetes.io/component"] != "stage"


@pytest.mark.parametrize("overlay", ["production", "gpu", "secure"])
def test_production_keeps_a_gateway_through_node_drains(overlay: str) -> None:
    """Two replicas, and a PodDisruptionBudget that keeps one of them serving."""
    objs = rendered(overlay)
    replicas = gateway(overlay)["spec"]["replicas"]
    pdb = one(objs, "PodDisruptionBudget", "gateway")
    labels = gateway(overlay)["spec"]["template"]["metadata"]["labels"]
    assert replicas >= 2
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= pdb["spec"]["minAvailable"] < replicas


class TestSecure:
    def test_it_logs_in_as_llmops_gateway(self) -> None:
        """SASL_SSL as KafkaUser llmops-gateway: its own password Secret and the cluster CA; the settings load."""
        pod = gateway("secure")["spec"]["template"]["spec"]
        main = container("secure")
        env = {v["name"]: v.get("value") for v in main["env"]}
        assert env["LLMOPS_KAFKA_SASL_USERNAME"] == "llmops-gateway"
        data = next(o["data"] for o in find(rendered("secure"), "ConfigMap") if "LLMOPS_KAFKA_BOOTSTRAP" in o["data"])
        assert secret_file(pod, main, data["LLMOPS_KAFKA_SASL_PASSWORD_FILE"]) == ("llmops-gateway", "password")
        assert secret_file(pod, main, data["LLMOPS_KAFKA_SSL_CAFILE"]) == CLUSTER_CA
        kafka = settings("secure").core.kafka
        assert kafka.security_protocol == "SASL_SSL"
        assert kafka.sasl_username == "llmops-gateway"
        assert kafka.sasl_password is not None

    def test_its_user_allows_exactly_what_it_does(self) -> None:
        """The KafkaUser writes the requests topic and reads and creates the prefix this replica's reply topic has."""
        user = one(rendered("secure"), "KafkaUser", "llmops-gateway")
        acls = {
            (a["resource"]["type"], a["resource"].get("name"), a["resource"].get("patternType"), op)
            for a in user["spec"]["authorization"]["acls"]
            for op in a["operations"]
        }
        s = settings("secure")
        assert ("topic", s.core.topics.requests, "literal", "Write") in acls
        prefixes = {a[1] for a in acls if a[2] == "prefix" and a[3] in {"Read", "Create"}}
        assert prefixes == {s.core.topics.name("responses.gateway-")}
        assert s.reply_topic_name().startswith(next(iter(prefixes)))
        assert not [a for a in acls if a[0] == "group" and a[3] != "Describe"]  # it consumes without a group

    def test_secrets_are_strimzi_s_or_the_api_keys(self) -> None:
        """The gateway pod reads its KafkaUser's password, the cluster CA and the API keys Secret, nothing else."""
        volumes = gateway("secure")["spec"]["template"]["spec"]["volumes"]
        names = {v["secret"]["secretName"] for v in volumes if "secret" in v}
        assert names == {"llmops-gateway", CLUSTER_CA[0], AUTH_SECRET[0]}
