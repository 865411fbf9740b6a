"""The kustomize-equivalent renderer: same output as `kubectl kustomize`, and validation that can fail."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.infra.helpers import ROOT
from tests.infra.kustomize import KustomizeError, build, configmap_hash, main, strategic_merge, validate_object

TARGETS = [
    ROOT / "infra/k8s/base",
    *sorted((ROOT / "infra/k8s/overlays").iterdir()),
    ROOT / "infra/grafana",
    ROOT / "infra/k8s/prometheus-operator",
]


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def same_as_kubectl(target: Path) -> bool:
    """True when `kubectl kustomize` gives the same objects, or kubectl is not installed."""
    if shutil.which("kubectl") is None:
        return True
    out = subprocess.run(["kubectl", "kustomize", str(target)], capture_output=True, text=True, check=True).stdout
    return build(target) == [doc for doc in yaml.safe_load_all(out) if doc]


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: web:1
          envFrom: [{configMapRef: {name: settings}}]
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
"""


class TestBuild:
    @pytest.mark.skipif(
        shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed"
    )
    @pytest.mark.parametrize("target", TARGETS, ids=lambda p: p.name)
    def test_same_output_as_kubectl_kustomize(self, target: Path) -> None:
        """Object for object, in the same order and with the same hash suffixes, as `kubectl kustomize`."""
        assert same_as_kubectl(target)

    def test_generated_configmap_gets_a_content_hash_and_references_follow(self, tmp_path: Path) -> None:
        """The ConfigMap name carries a hash of its data; the Deployment's reference is renamed with it."""
        write(
            tmp_path,
            {
                "web.yaml": DEPLOYMENT,
                "kustomization.yaml": "resources: [web.yaml]\nconfigMapGenerator:\n"
                "  - {name: settings, literals: [A=1]}\n",
            },
        )
        objs = build(tmp_path)
        cm = next(o for o in objs if o["kind"] == "ConfigMap")
        assert cm["metadata"]["name"] == "settings-89g4tffbfk"  # what kustomize 5.5 names it
        web = next(o for o in objs if o["kind"] == "Deployment")
        ref = web["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
        assert ref == cm["metadata"]["name"]
        assert same_as_kubectl(tmp_path)

    def test_hash_changes_with_the_data(self) -> None:
        """A changed value gives a new name, so pods roll when their config changes."""
        cm = {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"A": "1"}}
        changed = copy.deepcopy(cm)
        changed["data"]["A"] = "2"
        assert configmap_hash(cm) != configmap_hash(changed)
        assert configmap_hash(cm) == "89g4tffbfk"

    def test_overlay_merges_patches_images_replicas_and_namespace(self, tmp_path: Path) -> None:
        """An overlay on a base: merged ConfigMap, patched env by name, new image, replicas, namespace, labels."""
        base = tmp_path / "base"
        base.mkdir()
        write(
            base,
            {
                "web.yaml": DEPLOYMENT,
                "kustomization.yaml": "resources: [web.yaml]\nconfigMapGenerator:\n"
                "  - {name: settings, literals: [A=1, B=2]}\n",
            },
        )
        overlay = tmp_path / "overlay"
        overlay.mkdir()
        patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
        patch += (
            "      containers:\n        - name: web\n          env: [{name: B, value: '3'}, {name: C, value: '4'}]\n"
        )
        write(
            overlay,
            {
                "patch.yaml": patch,
                "kustomization.yaml": "namespace: prod\nresources: [../base]\npatches: [{path: patch.yaml}]\n"
                "images: [{name: web, newName: reg/web, newTag: '2'}]\nreplicas: [{name: web, count: 3}]\n"
                "labels: [{pairs: {team: a}, includeTemplates: true}]\n"
                "configMapGenerator:\n  - {name: settings, behavior: merge, literals: [B=5]}\n",
            },
        )
        objs = build(overlay)
        cm, web = objs
        assert cm["data"] == {"A": "1", "B": "5"}
        assert cm["metadata"]["namespace"] == web["metadata"]["namespace"] == "prod"
        container = web["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "reg/web:2"
        assert container["env"] == [
            {"name": "B", "value": "3"},
            {"name": "C", "value": "4"},
            {"name": "A", "value": "1"},
        ]
        assert web["spec"]["replicas"] == 3
        assert web["spec"]["template"]["metadata"]["labels"] == {"app": "web", "team": "a"}
        assert web["spec"]["selector"] == {"matchLabels": {"app": "web"}}
        assert same_as_kubectl(overlay)

    def test_unsupported_fields_are_refused(self, tmp_path: Path) -> None:
        """A kustomize feature the renderer does not implement fails loudly instead of being ignored."""
        write(tmp_path, {"web.yaml": DEPLOYMENT, "kustomization.yaml": "resources: [web.yaml]\nnamePrefix: x-\n"})
        with pytest.raises(KustomizeError, match="namePrefix"):
            build(tmp_path)

    def test_a_patch_that_matches_nothing_is_an_error(self, tmp_path: Path) -> None:
        """A patch naming a missing object fails (kustomize fails too)."""
        write(
            tmp_path,
            {
                "web.yaml": DEPLOYMENT,
                "kustomization.yaml": "resources: [web.yaml]\npatches:\n  - target: {kind: Service}\n"
                "    patch: '{apiVersion: v1, kind: Service, metadata: {name: x}}'\n",
            },
        )
        with pytest.raises(KustomizeError, match="matches nothing"):
            build(tmp_path)

    def test_cli_prints_yaml_and_validates(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`python -m tests.infra.kustomize` prints the build, or validates it with --validate."""
        assert main([str(ROOT / "infra/k8s/overlays/dev")]) == 0
        assert len([d for d in yaml.safe_load_all(capsys.readouterr().out) if d]) > 20
        assert main(["--validate", str(ROOT / "infra/k8s/overlays/dev")]) == 0
        assert "objects valid" in capsys.readouterr().out


class TestStrategicMerge:
    def test_maps_merge_and_null_deletes(self) -> None:
        """Maps merge key by key; a null in the patch removes the key."""
        assert strategic_merge({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": None, "e": 4}}) == {
            "a": 1,
            "b": {"d": 3, "e": 4},
        }

    def test_keyed_lists_merge_other_lists_replace(self) -> None:
        """containers merge by name; args (no merge key) and lists in custom resources are replaced."""
        base = {"containers": [{"name": "a", "args": ["x"], "image": "i"}]}
        patch = {"containers": [{"name": "a", "args": ["y"]}]}
        assert strategic_merge(base, patch) == {"containers": [{"name": "a", "args": ["y"], "image": "i"}]}
        assert strategic_merge(base, patch, merge_lists=False) == patch


class TestValidateObject:
    def test_a_wrong_field_in_a_deployment_fails(self) -> None:
        """The Kubernetes schema is strict: a misspelt field is an error."""
        deployment = yaml.safe_load(DEPLOYMENT)
        validate_object(deployment)
        deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
        with pytest.raises(kubernetes_validate.ValidationError):
            validate_object(deployment)

    def test_a_keda_trigger_value_must_be_a_string(self) -> None:
        """KEDA reads trigger metadata as strings; an unquoted number fails."""
        scaled = {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "kafka", "metadata": {"lag": "5"}}]},
        }
        validate_object(scaled)
        scaled["spec"]["triggers"][0]["metadata"]["lag"] = 5
        with pytest.raises(jsonschema.ValidationError):
            validate_object(scaled)

    def test_a_kafka_topic_needs_its_cluster_label(self) -> None:
        """A Strimzi KafkaTopic without strimzi.io/cluster would be ignored by the operator: an error."""
        topic = {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaTopic",
            "metadata": {"name": "t", "labels": {"strimzi.io/cluster": "c"}},
            "spec": {"partitions": 3, "replicas": 3},
        }
        validate_object(topic)
        del topic["metadata"]["labels"]["strimzi.io/cluster"]
        with pytest.raises(jsonschema.ValidationError):
            validate_object(topic)

    def test_an_unknown_custom_resource_is_refused(self) -> None:
        """A custom resource without a schema here is not waved through."""
        with pytest.raises(KustomizeError):
            validate_object({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}})
