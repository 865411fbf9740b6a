"""infra/k8s: every overlay renders, every object is valid, and the manifests agree with the code."""

from __future__ import annotations

import json
import secrets
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml

from shared.runtime.settings import TopicSettings
from shared.stack.embedded import STAGES
from tests.infra.helpers import ROOT, known_variables, wired_stage
from tests.infra.kustomize import build, validate_object

K8S = ROOT / "infra" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
HEALTH_PORT = 8080


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(build(K8S / "overlays" / overlay))


def find(objs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = find(objs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


@cache
def mounted_secret() -> str:
    """A readable stand-in for a secret file a pod mounts (settings read ``*_PASSWORD_FILE`` when they load)."""
    path = Path(tempfile.mkdtemp(prefix="llmops-k8s-")) / "password"
    path.write_text("k8s-test-" + secrets.token_hex(16))
    return str(path)


def container_env(overlay: str, stage: str) -> dict[str, str]:
    """The LLMOPS_* environment a stage's container gets: its ConfigMaps, then its own env entries.

    Password and CA files (mounted from Secrets in the pod; test_k8s_secure.py checks the mounts) point at
    stand-ins: a random password, certifi's CA bundle.
    """
    objs = rendered(overlay)
    container = main_container(one(objs, "Deployment", stage))
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= one(objs, "ConfigMap", source["configMapRef"]["name"])["data"]
    for var in container.get("env", []):
        env[var["name"]] = var.get("value", f"{stage}-pod-0")  # fieldRef: the pod name
    env |= {k: mounted_secret() for k in env if k.endswith("_PASSWORD_FILE")}
    env |= {k: certifi.where() for k in env if k.endswith("_CAFILE")}
    return {k: v for k, v in env.items() if k.startswith("LLMOPS_")}


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == deployment["metadata"]["name"])


class TestOverlays:
    def test_there_are_dev_production_and_gpu_overlays(self) -> None:
        """The overlays the README documents exist."""
        assert {"dev", "production", "gpu"} <= set(OVERLAYS)

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_object_validates(self, overlay: str) -> None:
        """Each rendered object passes the Kubernetes JSON schema (strict) or its CRD's schema."""
        objs = rendered(overlay)
        assert len(objs) > 20
        for obj in objs:
            validate_object(obj)

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_everything_lands_in_one_namespace(self, overlay: str) -> None:
        """Every namespaced object is in the llmops namespace, which the overlay also creates."""
        objs = rendered(overlay)
        assert [o["metadata"]["name"] for o in find(objs, "Namespace")] == ["llmops"]
        assert {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"} == {"llmops"}


@pytest.mark.parametrize("overlay", OVERLAYS)
class TestStages:
    def test_each_stage_has_a_deployment_service_and_scaledobject(self, overlay: str) -> None:
        """Exactly the five stages are Deployments, each with its metrics Service and KEDA ScaledObject.

        The gateway is the one other workload, a StatefulSet with its Service (test_k8s_gateway.py).
        """
        objs = rendered(overlay)
        for kind in ("Deployment", "ScaledObject"):
            assert sorted(o["metadata"]["name"] for o in find(objs, kind)) == sorted(STAGES), kind
        assert sorted(o["metadata"]["name"] for o in find(objs, "Service")) == sorted([*STAGES, "gateway"])
        assert [o["metadata"]["name"] for o in find(objs, "StatefulSet")] == ["gateway"]

    def test_scaling_follows_the_lag_of_the_stage_own_input(self, overlay: str) -> None:
        """The KEDA Kafka trigger names the topic and consumer group the service really consumes."""
        objs = rendered(overlay)
        for stage in STAGES:
            env = container_env(overlay, stage)
            wired = wired_stage(stage, env)
            scaled = one(objs, "ScaledObject", stage)
            assert scaled["spec"]["scaleTargetRef"]["name"] == stage
            (trigger,) = scaled["spec"]["triggers"]
            assert trigger["type"] == "kafka"
            assert trigger["metadata"]["topic"] == wired.input_topic
            assert trigger["metadata"]["consumerGroup"] == wired.group_id == f"llmops-{stage}"
            assert trigger["metadata"]["bootstrapServers"] == wired.settings.core.kafka.bootstrap
            assert int(trigger["metadata"]["lagThreshold"]) >= 1
            topic = next(t for t in find(objs, "KafkaTopic") if t["spec"]["topicName"] == wired.input_topic)
            spec = scaled["spec"]
            assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= topic["spec"]["partitions"]

    def test_pods_run_the_stage_with_probes_on_its_health_port(self, overlay: str) -> None:
        """The container runs services.<stage>; probes and scrape annotations use the port the settings serve."""
        objs = rendered(overlay)
        for stage in STAGES:
            wired = wired_stage(stage, container_env(overlay, stage))
            assert wired.settings.health_port == HEALTH_PORT
            assert wired.settings.health_host == "0.0.0.0"
            deployment = one(objs, "Deployment", stage)
            pod = deployment["spec"]["template"]
            container = main_container(deployment)
            assert container["command"] == ["python", "-m", f"services.{stage}"]
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": HEALTH_PORT}
            assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": HEALTH_PORT}
            assert {"containerPort": HEALTH_PORT, "name": "http"} in container["ports"]
            annotations = pod["metadata"]["annotations"]
            assert annotations["prometheus.io/scrape"] == "true"
            assert annotations["prometheus.io/port"] == str(HEALTH_PORT)
            assert annotations["prometheus.io/path"] == "/metrics"
            # the drain the settings allow fits in the grace period
            assert pod["spec"]["terminationGracePeriodSeconds"] > wired.settings.shutdown_timeout_s

    def test_pods_are_non_root_with_resources(self, overlay: str) -> None:
        """Every container (stages and gateway) has requests and limits and runs as non-root without escalation."""
        objs = rendered(overlay)
        for deployment in find(objs, "Deployment") + find(objs, "StatefulSet"):
            pod = deployment["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] != 0
            for container in pod["containers"] + pod.get("initContainers", []):
                assert {"cpu", "memory"} <= set(container["resources"]["requests"])
                assert {"cpu", "memory"} <= set(container["resources"]["limits"])
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]

    def test_service_selects_the_stage_pods(self, overlay: str) -> None:
        """Each stage's Service selects its Deployment's pods on the health port."""
        objs = rendered(overlay)
        for stage in STAGES:
            service = one(objs, "Service", stage)
            labels = one(objs, "Deployment", stage)["spec"]["template"]["metadata"]["labels"]
            assert service["spec"]["selector"].items() <= labels.items()
            assert [p["targetPort"] for p in service["spec"]["ports"]] == [HEALTH_PORT]

    def test_config_is_made_of_real_settings(self, overlay: str) -> None:
        """Every LLMOPS_ variable the pods get is a setting, and every value parses in the real settings."""
        for stage in STAGES:
            env = container_env(overlay, stage)
            assert set(env) <= known_variables()
            wired = wired_stage(stage, env)  # raises on a value the settings reject
            assert wired.settings.core.log_format == "json"
            assert wired.settings.replica == f"{stage}-pod-0"


class TestTopics:
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_topic_is_defined_once(self, overlay: str) -> None:
        """The KafkaTopics are exactly TopicSettings.all(), for the cluster the config points at."""
        topics = find(rendered(overlay), "KafkaTopic")
        assert sorted(t["spec"]["topicName"] for t in topics) == sorted(TopicSettings().all())
        for topic in topics:
            assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "llmops"
            assert int(topic["spec"]["config"]["min.insync.replicas"]) <= topic["spec"]["replicas"]

    @pytest.mark.parametrize("overlay", ["production", "gpu"])
    def test_production_topics_survive_a_broker_loss(self, overlay: str) -> None:
        """3 replicas, 2 in sync, and as many partitions as the largest stage may have replicas."""
        objs = rendered(overlay)
        most = max(s["spec"]["maxReplicaCount"] for s in find(objs, "ScaledObject"))
        for topic in find(objs, "KafkaTopic"):
            assert topic["spec"]["replicas"] == 3
            assert topic["spec"]["config"]["min.insync.replicas"] == 2
            assert topic["spec"]["partitions"] >= most

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_topics_created_by_llmops_match(self, overlay: str) -> None:
        """LLMOPS_KAFKA_PARTITIONS and _REPLICATION_FACTOR agree with the KafkaTopics, so `llmops topics` would make the same."""
        objs = rendered(overlay)
        env = container_env(overlay, "preprocess")
        wired = wired_stage("preprocess", env)
        kafka = wired.settings.core.kafka
        assert {t["spec"]["replicas"] for t in find(objs, "KafkaTopic")} == {kafka.replication_factor}
        assert {t["spec"]["partitions"] for t in find(objs, "KafkaTopic")} == {kafka.partitions}


class TestGpu:
    def test_inference_runs_on_gpu_nodes_with_the_cuda_image(self) -> None:
        """The gpu overlay gives inference a GPU, a GPU node and the CUDA image; its other settings stay."""
        objs = rendered("gpu")
        deployment = one(objs, "Deployment", "inference")
        pod = deployment["spec"]["template"]["spec"]
        container = main_container(deployment)
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
        assert container["image"].endswith("-cuda")
        env = container_env("gpu", "inference")
        wired = wired_stage("inference", env)
        assert wired.settings.n_gpu_layers == "auto"
        assert wired.settings.n_threads <= int(container["resources"]["limits"]["cpu"])
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # the patch merged, not replaced

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_only_gpu_inference_asks_for_a_gpu(self, overlay: str) -> None:
        """No other overlay or stage requests a GPU or uses the CUDA image."""
        for deployment in find(rendered(overlay), "Deployment"):
            on_gpu = overlay == "gpu" and deployment["metadata"]["name"] == "inference"
            text = json.dumps(deployment)
            assert ("nvidia.com/gpu" in text) == on_gpu
            assert ("-cuda" in text) == on_gpu

    def test_cpu_threads_match_the_cpu_limit(self) -> None:
        """llama.cpp threads are pinned to the CPU limit, not the node's core count."""
        for overlay in OVERLAYS:
            container = main_container(one(rendered(overlay), "Deployment", "inference"))
            wired = wired_stage("inference", container_env(overlay, "inference"))
            assert wired.settings.n_threads == int(container["resources"]["limits"]["cpu"])


class TestMonitoring:
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_dashboard_is_the_same_json_grafana_gets_in_compose(self, overlay: str) -> None:
        """The dashboard ConfigMap carries infra/grafana/dashboards/llmops.json unchanged, for Grafana's sidecar."""
        (cm,) = [c for c in find(rendered(overlay), "ConfigMap") if "llmops.json" in c.get("data", {})]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["data"]["llmops.json"] == (ROOT / "infra/grafana/dashboards/llmops.json").read_text()

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_scrape_config_keeps_the_annotated_pods_of_the_namespace(self, overlay: str) -> None:
        """The Prometheus scrape job parses and discovers pods in the namespace the stages run in."""
        (cm,) = [c for c in find(rendered(overlay), "ConfigMap") if "prometheus.yml" in c.get("data", {})]
        config = yaml.safe_load(cm["data"]["prometheus.yml"])
        (job,) = config["scrape_configs"]
        (sd,) = job["kubernetes_sd_configs"]
        assert sd["role"] == "pod"
        assert sd["namespaces"]["names"] == [cm["metadata"]["namespace"]]
        keep = job["relabel_configs"][0]
        assert keep["action"] == "keep"
        assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]

    def test_pod_monitor_scrapes_every_stage(self) -> None:
        """The Prometheus Operator's PodMonitor is valid and selects each stage's pods on their metrics port."""
        (monitor,) = build(K8S / "prometheus-operator")
        validate_object(monitor)
        stages = rendered("production")
        assert monitor["metadata"]["namespace"] == one(stages, "Deployment", "preprocess")["metadata"]["namespace"]
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["path"] == "/metrics"
        for stage in STAGES:
            deployment = one(stages, "Deployment", stage)
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
            port = next(p for p in main_container(deployment)["ports"] if p["name"] == endpoint["port"])
            assert port["containerPort"] == HEALTH_PORT

    @pytest.mark.parametrize("overlay", ["production", "gpu"])
    def test_disruption_budgets_cover_every_stage(self, overlay: str) -> None:
        """Each stage has a PodDisruptionBudget selecting its pods, below its minimum replica count."""
        objs = rendered(overlay)
        for stage in STAGES:
            pdb = one(objs, "PodDisruptionBudget", stage)
            labels = one(objs, "Deployment", stage)["spec"]["template"]["metadata"]["labels"]
            assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert pdb["spec"]["minAvailable"] < one(objs, "ScaledObject", stage)["spec"]["minReplicaCount"]


def test_kustomizations_only_reference_files_that_exist() -> None:
    """Every resource, patch and generated file a kustomization names is there (kustomize fails otherwise)."""
    for kustomization in [*K8S.rglob("kustomization.yaml"), ROOT / "infra/grafana/kustomization.yaml"]:
        data = yaml.safe_load(kustomization.read_text())
        names = list(data.get("resources", [])) + [p["path"] for p in data.get("patches", []) if "path" in p]
        for gen in data.get("configMapGenerator", []):
            names += [f.partition("=")[2] or f for f in gen.get("files", [])]
        for name in names:
            assert (kustomization.parent / name).exists(), f"{kustomization}: {name}"
    assert Path(K8S / "base" / "kustomization.yaml").is_file()
