"""infra/k8s hardening: locked-down pods in every workload, and network policies that allow only what is needed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from shared.stack.embedded import STAGES
from tests.infra.helpers import ROOT
from tests.infra.kustomize import build

K8S = ROOT / "infra" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
HEALTH_PORT = 8080
TMP = "/tmp"  # noqa: S108 - a mount point the manifests must have, not a file written
KAFKA_PEER = {"strimzi.io/cluster": "llmops", "strimzi.io/kind": "Kafka"}
DNS_PEER = ({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})
PROMETHEUS_PEER = ({"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "prometheus"})
# Stages whose init container runs `llmops models fetch` (wheels from PyPI over HTTPS).
FETCHES_MODELS = {"preprocess", "inference"}

Obj = dict[str, Any]


@cache
def rendered(overlay: str) -> tuple[Obj, ...]:
    return tuple(build(K8S / "overlays" / overlay))


def hardening_problems(workload: Obj, data_dir: str = "/data") -> list[str]:
    """What a workload lacks of the pod hardening contract (empty when it has all of it).

    Pod: runAsNonRoot, a non-zero runAsUser, runAsGroup and fsGroup, the RuntimeDefault seccomp profile, no
    service account token. Every container (init containers too): no privilege escalation, all capabilities
    dropped, a read-only root filesystem with /tmp and the data dir on emptyDir volumes, cpu and memory
    requests and limits.
    """
    name = f"{workload['kind']}/{workload['metadata']['name']}"
    pod = workload["spec"]["template"]["spec"]
    ctx = pod.get("securityContext", {})
    problems = [f"{name}: {field} unset or 0" for field in ("runAsUser", "runAsGroup", "fsGroup") if not ctx.get(field)]
    if ctx.get("runAsNonRoot") is not True:
        problems.append(f"{name}: runAsNonRoot is not true")
    if ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: mounts a service account token")
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in pod["containers"] + pod.get("initContainers", []):
        problems += _container_problems(f"{name}/{container['name']}", container, empty_dirs, data_dir)
    return problems


def _container_problems(where: str, container: Obj, empty_dirs: set[str], data_dir: str) -> list[str]:
    ctx = container.get("securityContext", {})
    caps = ctx.get("capabilities", {})
    checks = {
        "allowPrivilegeEscalation is not false": ctx.get("allowPrivilegeEscalation") is not False,
        "readOnlyRootFilesystem is not true": ctx.get("readOnlyRootFilesystem") is not True,
        "capabilities are not drop [ALL]": caps.get("drop") != ["ALL"] or bool(caps.get("add")),
        "overrides the pod's non-root context": bool(ctx.get("privileged"))
        or ctx.get("runAsUser") == 0
        or ctx.get("runAsNonRoot") is False,
    }
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        checks[f"no cpu and memory {kind}"] = not {"cpu", "memory"} <= set(resources.get(kind, {}))
    writable = {m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs}
    for path in (TMP, data_dir):
        checks[f"{path} is not a writable emptyDir mount"] = path not in writable
    return [f"{where}: {problem}" for problem, failed in checks.items() if failed]


def workloads(overlay: str) -> list[Obj]:
    return [o for o in rendered(overlay) if o["kind"] in WORKLOADS]


def config_data_dir(overlay: str) -> str:
    (config,) = [o for o in rendered(overlay) if o["kind"] == "ConfigMap" and "LLMOPS_DATA_DIR" in o.get("data", {})]
    return str(config["data"]["LLMOPS_DATA_DIR"])


class TestPodHardening:
    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_every_workload_is_locked_down(self, overlay: str) -> None:
        """Every Deployment/StatefulSet of the overlay has the whole hardening contract, init containers too."""
        found = workloads(overlay)
        assert {w["metadata"]["name"] for w in found} >= {*STAGES, "gateway"}
        problems = [p for w in found for p in hardening_problems(w, config_data_dir(overlay))]
        assert problems == []

    @pytest.mark.parametrize(
        ("change", "expected"),
        [
            (lambda pod, c: pod["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
            (lambda pod, c: pod["securityContext"].update(runAsUser=0), "runAsUser"),
            (lambda pod, c: pod["securityContext"].pop("fsGroup"), "fsGroup"),
            (lambda pod, c: pod["securityContext"].pop("seccompProfile"), "seccompProfile"),
            (lambda pod, c: c["securityContext"].update(readOnlyRootFilesystem=False), "readOnlyRootFilesystem"),
            (lambda pod, c: c["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
            (lambda pod, c: c["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "capabilities"),
            (lambda pod, c: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "capabilities"),
            (lambda pod, c: c["securityContext"].update(privileged=True), "non-root context"),
            (lambda pod, c: c["resources"].pop("limits"), "limits"),
            (lambda pod, c: c["resources"]["requests"].pop("memory"), "requests"),
            (lambda pod, c: c.update(volumeMounts=[m for m in c["volumeMounts"] if m["name"] != "tmp"]), TMP),
            # the data dir on something other than an emptyDir (a hostPath, a ConfigMap, ...)
            (
                lambda pod, c: c.update(
                    volumeMounts=[{**m, "name": "host"} if m["name"] == "data" else m for m in c["volumeMounts"]]
                ),
                "/data",
            ),
        ],
    )
    def test_a_missing_setting_is_reported(self, change: Callable[[Obj, Obj], object], expected: str) -> None:
        """The check fails for a container (here the init container) that lacks any one part of the contract."""
        deployment = copy.deepcopy(next(w for w in workloads("production") if w["metadata"]["name"] == "inference"))
        pod = deployment["spec"]["template"]["spec"]
        change(pod, pod["initContainers"][0])
        problems = hardening_problems(deployment)
        assert problems
        assert all(expected in p for p in problems), problems


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions In/NotIn/Exists) matches these labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def policies_for(overlay: str, labels: dict[str, str]) -> list[Obj]:
    return [o for o in rendered(overlay) if o["kind"] == "NetworkPolicy" and selects(o["spec"]["podSelector"], labels)]


def peer_key(peer: Obj) -> object:
    """A peer as a comparable value: (namespace labels, pod labels) or ("ipBlock", cidr)."""
    if "ipBlock" in peer:
        return ("ipBlock", peer["ipBlock"]["cidr"])
    namespace = peer.get("namespaceSelector", {}).get("matchLabels")
    pods = peer.get("podSelector", {}).get("matchLabels")
    return (tuple(sorted(namespace.items())) if namespace is not None else None, tuple(sorted((pods or {}).items())))


def allowed(policies: list[Obj], direction: str) -> set[tuple[object, str, int]]:
    """Every (peer, protocol, port) the policies allow in one direction (``ingress`` or ``egress``)."""
    side = "from" if direction == "ingress" else "to"
    out = set()
    for policy in policies:
        for rule in policy["spec"].get(direction, []):
            assert rule.get(side), f"{policy['metadata']['name']}: a rule with no peers allows everyone"
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule with no ports allows every port"
            for peer in rule[side]:
                for port in rule["ports"]:
                    out.add((peer_key(peer), port.get("protocol", "TCP"), port["port"]))
    return out


def key(namespace: dict[str, str] | None, pods: dict[str, str]) -> object:
    return peer_key(
        {
            "podSelector": {"matchLabels": pods},
            **({"namespaceSelector": {"matchLabels": namespace}} if namespace is not None else {}),
        }
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
class TestNetworkPolicies:
    def test_everything_is_denied_by_default(self, overlay: str) -> None:
        """A policy selecting every pod denies all ingress and egress, so only the allows below count."""
        deny = [p for p in policies_for(overlay, {}) if p["metadata"]["name"] == "default-deny"]
        assert len(deny) == 1
        spec = deny[0]["spec"]
        assert spec["podSelector"] == {}
        assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        assert "ingress" not in spec
        assert "egress" not in spec

    def test_every_pod_of_every_workload_is_covered(self, overlay: str) -> None:
        """Every workload's pods are selected by a policy of each type (none escapes the default deny)."""
        for workload in workloads(overlay):
            labels = workload["spec"]["template"]["metadata"]["labels"]
            types = {t for p in policies_for(overlay, labels) for t in p["spec"]["policyTypes"]}
            assert types == {"Ingress", "Egress"}, workload["metadata"]["name"]

    def test_stage_egress_is_kafka_dns_and_only_what_the_stage_needs(self, overlay: str) -> None:
        """Stages reach the brokers and DNS; grounding also Qdrant; model-fetching stages also HTTPS; nothing else."""
        kafka = {(key(None, KAFKA_PEER), "TCP", port) for port in (9092, 9093)}
        dns = {(key(*DNS_PEER), proto, 53) for proto in ("UDP", "TCP")}
        qdrant = {(key(None, {"app.kubernetes.io/name": "qdrant"}), "TCP", port) for port in (6333, 6334)}
        https = {(("ipBlock", "0.0.0.0/0"), "TCP", 443)}
        for stage in STAGES:
            deployment = next(w for w in workloads(overlay) if w["metadata"]["name"] == stage)
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            expected = kafka | dns
            expected |= qdrant if stage == "grounding" else set()
            expected |= https if stage in FETCHES_MODELS else set()
            assert allowed(policies_for(overlay, labels), "egress") == expected, stage

    def test_the_kafka_bootstrap_port_is_allowed(self, overlay: str) -> None:
        """The port the stages' bootstrap address names is one the egress policy opens."""
        (config,) = [o for o in rendered(overlay) if o["kind"] == "ConfigMap" and "LLMOPS_KAFKA_BOOTSTRAP" in o["data"]]
        port = int(config["data"]["LLMOPS_KAFKA_BOOTSTRAP"].rpartition(":")[2])
        labels = {"app.kubernetes.io/name": "preprocess", "app.kubernetes.io/component": "stage"}
        assert (key(None, KAFKA_PEER), "TCP", port) in allowed(policies_for(overlay, labels), "egress")

    def test_https_egress_leaves_the_cluster_networks_out(self, overlay: str) -> None:
        """The model download may reach the internet on 443, not private addresses (the cluster, metadata APIs)."""
        for policy in rendered(overlay):
            if policy["kind"] != "NetworkPolicy":
                continue
            for rule in policy["spec"].get("egress", []):
                for peer in rule["to"]:
                    if "ipBlock" in peer:
                        assert [p["port"] for p in rule["ports"]] == [443]
                        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
                            peer["ipBlock"]["except"]
                        )

    def test_stage_ingress_is_prometheus_on_the_metrics_port_only(self, overlay: str) -> None:
        """Only Prometheus in the monitoring namespace may connect, and only to the health/metrics port."""
        for stage in STAGES:
            deployment = next(w for w in workloads(overlay) if w["metadata"]["name"] == stage)
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert allowed(policies_for(overlay, labels), "ingress") == {(key(*PROMETHEUS_PEER), "TCP", HEALTH_PORT)}
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(HEALTH_PORT)
