"""A small `kustomize build` for the features infra/k8s uses, and offline validation of what it renders.

There is no kustomize binary on CI machines; this renders the same output for exactly the features the
manifests use, and refuses any other (so a new feature cannot be silently ignored):

- ``resources`` (YAML files and other kustomization folders), ``namespace``,
- ``labels`` (``pairs``, ``includeTemplates``; not ``includeSelectors``),
- ``images`` (``newName``, ``newTag``), ``replicas``,
- ``configMapGenerator`` (``literals``, ``files``, ``behavior: create|merge``, ``options.labels``) with
  kustomize's content-hash name suffix and the references to it rewritten,
- ``patches`` as strategic merge patches (a ``path`` or an inline ``patch``, with an optional ``target``
  by kind and name); lists merge by key for the pod-spec fields kustomize merges, and are replaced elsewhere.

Where ``kubectl kustomize`` is installed, tests compare the two outputs object by object.

    python -m tests.infra.kustomize infra/k8s/overlays/production              # print the YAML
    python -m tests.infra.kustomize --validate infra/k8s/overlays/*            # render and validate each
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

__all__ = [
    "CRD_SCHEMAS",
    "KUBERNETES_VERSION",
    "KustomizeError",
    "build",
    "configmap_hash",
    "strategic_merge",
    "validate_object",
]

KUBERNETES_VERSION = "1.32"
Obj = dict[str, Any]

_SUPPORTED_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "replicas",
    "configMapGenerator",
    "patches",
}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume"}
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Strategic-merge keys of the list fields kustomize merges in pod specs (from the Kubernetes OpenAPI).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
# kustomize's "legacy" output order: these kinds first, in this order; then the rest by group, version and kind;
# then by namespace and name.
_KIND_ORDER = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]


class KustomizeError(ValueError):
    """A kustomization uses something this renderer does not support, or is inconsistent."""


@dataclass
class _Resource:
    obj: Obj
    generated: bool = False  # a ConfigMap from configMapGenerator: gets the hash suffix at the end

    @property
    def key(self) -> tuple[str, str, str]:
        meta = self.obj["metadata"]
        return self.obj["kind"], meta.get("namespace", ""), meta["name"]


def build(path: Path) -> list[Obj]:
    """Everything ``kustomize build path`` prints, as objects, in kustomize's output order."""
    resources = _build(Path(path))
    renames: dict[tuple[str, str], str] = {}
    for res in resources:
        if res.generated:
            meta = res.obj["metadata"]
            new = f"{meta['name']}-{configmap_hash(res.obj)}"
            renames[meta.get("namespace", ""), meta["name"]] = new
            meta["name"] = new
    for res in resources:
        _rename_configmap_refs(res.obj, renames)
    objs = [res.obj for res in resources]
    return sorted(objs, key=_order)


def _order(obj: Obj) -> tuple[int, str, str, str]:
    kind = obj["kind"]
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    # Within a rank kustomize compares the GVK as "group_version_kind" (the core group is "~G"), so
    # keda.sh's ScaledObject comes before networking.k8s.io's NetworkPolicy.
    group, _, version = obj["apiVersion"].rpartition("/")
    meta = obj["metadata"]
    return rank, f"{group or '~G'}_{version}_{kind}", meta.get("namespace", ""), meta["name"]


def _load_kustomization(folder: Path) -> Obj:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (folder / name).is_file():
            data = yaml.safe_load((folder / name).read_text()) or {}
            unsupported = set(data) - _SUPPORTED_KEYS
            if unsupported:
                raise KustomizeError(f"{folder}: unsupported kustomization fields {sorted(unsupported)}")
            return dict(data)
    raise KustomizeError(f"{folder}: no kustomization.yaml")


def _build(folder: Path) -> list[_Resource]:
    kust = _load_kustomization(folder)
    resources = _load_resources(folder, kust.get("resources", []))
    for gen in kust.get("configMapGenerator", []):
        _generate_configmap(folder, gen, resources)
    for patch in kust.get("patches", []):
        _apply_patch(folder, patch, resources)
    if "namespace" in kust:
        for res in resources:
            if res.obj["kind"] not in _CLUSTER_SCOPED:
                res.obj["metadata"]["namespace"] = kust["namespace"]
    for spec in kust.get("labels", []):
        _apply_labels(spec, resources)
    for spec in kust.get("replicas", []):
        _apply_replicas(spec, resources)
    for spec in kust.get("images", []):
        _apply_image(spec, resources)
    return resources


def _load_resources(folder: Path, entries: list[str]) -> list[_Resource]:
    resources: list[_Resource] = []
    for entry in entries:
        target = (folder / entry).resolve()
        loaded = _build(target) if target.is_dir() else [_Resource(o) for o in _load_yaml(target)]
        for res in loaded:
            if any(res.key == other.key for other in resources):
                raise KustomizeError(f"{folder}: {res.key} is defined twice")
            resources.append(res)
    return resources


def _load_yaml(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _generate_configmap(folder: Path, gen: Obj, resources: list[_Resource]) -> None:
    unsupported = set(gen) - {"name", "literals", "files", "behavior", "options"}
    if unsupported or set(gen.get("options", {})) - {"labels"}:
        raise KustomizeError(f"{folder}: unsupported configMapGenerator fields in {gen}")
    data = _configmap_data(folder, gen)
    behavior = gen.get("behavior", "create")
    existing = [r for r in resources if r.generated and r.obj["metadata"]["name"] == gen["name"]]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"{folder}: ConfigMap {gen['name']} already exists (use behavior: merge)")
        meta: Obj = {"name": gen["name"]}
        if gen.get("options", {}).get("labels"):
            meta["labels"] = dict(gen["options"]["labels"])
        resources.append(
            _Resource({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}, generated=True)
        )
    elif behavior == "merge":
        if not existing:
            raise KustomizeError(f"{folder}: no generated ConfigMap {gen['name']} to merge into")
        existing[0].obj["data"].update(data)
    else:
        raise KustomizeError(f"{folder}: unsupported behavior {behavior!r}")


def _configmap_data(folder: Path, gen: Obj) -> dict[str, str]:
    data: dict[str, str] = {}
    for literal in gen.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise KustomizeError(f"{folder}: literal {literal!r} has no '='")
        data[key.strip()] = value.strip().strip("\"'")
    for entry in gen.get("files", []):
        key, sep, rel = entry.partition("=")
        file = folder / (rel if sep else key)
        if not file.resolve().is_relative_to(folder.resolve()):
            raise KustomizeError(f"{folder}: {entry} is outside the kustomization root")
        data[key if sep else file.name] = file.read_text()
    return data


def configmap_hash(cm: Obj) -> str:
    """kustomize's name suffix: the first 10 hex digits of sha256 of the JSON of kind and data, vowels replaced.

    kustomize's hasher also encodes the name, but generators hash before the name is set: it is always "".
    """
    encoded = {"data": cm.get("data", {}), "kind": "ConfigMap", "name": ""}
    # Go's json.Marshal: sorted keys, no spaces, UTF-8 as is, and <, >, & escaped.
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


def _pod_specs(obj: Obj) -> list[Obj]:
    if obj["kind"] in _WORKLOADS:
        return [obj["spec"]["template"]["spec"]]
    return []


def _rename_configmap_refs(obj: Obj, renames: dict[tuple[str, str], str]) -> None:
    namespace = obj["metadata"].get("namespace", "")

    def rename(ref: Obj | None) -> None:
        if ref and (namespace, ref.get("name")) in renames:
            ref["name"] = renames[namespace, ref["name"]]

    for spec in _pod_specs(obj):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for source in container.get("envFrom", []):
                rename(source.get("configMapRef"))
            for var in container.get("env", []):
                rename(var.get("valueFrom", {}).get("configMapKeyRef"))
        for volume in spec.get("volumes", []):
            rename(volume.get("configMap"))


def _apply_patch(folder: Path, spec: Obj, resources: list[_Resource]) -> None:
    if set(spec) - {"path", "patch", "target"} or set(spec.get("target", {})) - {"kind", "name"}:
        raise KustomizeError(f"{folder}: unsupported patch fields in {spec}")
    docs = _load_yaml(folder / spec["path"]) if "path" in spec else [yaml.safe_load(spec["patch"])]
    if len(docs) != 1 or not isinstance(docs[0], dict) or "op" in docs[0]:
        raise KustomizeError(f"{folder}: only single strategic-merge patches are supported: {spec}")
    patch = docs[0]
    target = spec.get("target") or {"kind": patch["kind"], "name": patch["metadata"]["name"]}
    matched = [
        r
        for r in resources
        if r.obj["kind"] == target.get("kind", r.obj["kind"])
        and r.obj["metadata"]["name"] == target.get("name", r.obj["metadata"]["name"])
    ]
    if not matched:
        raise KustomizeError(f"{folder}: patch target {target} matches nothing")
    for res in matched:
        body = copy.deepcopy(patch)
        body["metadata"]["name"] = res.obj["metadata"]["name"]  # a targeted patch applies whatever its name
        res.obj = strategic_merge(res.obj, body, merge_lists=_is_builtin(res.obj))


def _is_builtin(obj: Obj) -> bool:
    """A Kubernetes kind (core or a ``*.k8s.io`` group) rather than a custom resource."""
    group = obj["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def strategic_merge(base: Any, patch: Any, *, merge_lists: bool = True, field: str = "") -> Any:
    """``patch`` merged into ``base``: maps recursively (null deletes), keyed lists by their merge key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, merge_lists=merge_lists, field=key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and merge_lists and field in _MERGE_KEYS:
        # As kustomize orders them: the patch's items first (merged into their base item), then the others.
        merge_key = _MERGE_KEYS[field]
        patched = {item.get(merge_key) for item in patch}
        by_key = {item.get(merge_key): item for item in base}
        merged = [
            strategic_merge(by_key[item.get(merge_key)], item, merge_lists=merge_lists, field=field)
            if item.get(merge_key) in by_key
            else copy.deepcopy(item)
            for item in patch
        ]
        return merged + [copy.deepcopy(item) for item in base if item.get(merge_key) not in patched]
    return copy.deepcopy(patch)


def _apply_labels(spec: Obj, resources: list[_Resource]) -> None:
    if spec.get("includeSelectors") or set(spec) - {"pairs", "includeSelectors", "includeTemplates"}:
        raise KustomizeError(f"unsupported labels entry {spec}")
    for res in resources:
        res.obj["metadata"].setdefault("labels", {}).update(spec["pairs"])
        if spec.get("includeTemplates") and res.obj["kind"] in _WORKLOADS:
            template_meta = res.obj["spec"]["template"].setdefault("metadata", {})
            template_meta.setdefault("labels", {}).update(spec["pairs"])


def _apply_replicas(spec: Obj, resources: list[_Resource]) -> None:
    matched = [r for r in resources if r.obj["kind"] in _WORKLOADS and r.obj["metadata"]["name"] == spec["name"]]
    if not matched:
        raise KustomizeError(f"replicas: no workload named {spec['name']}")
    for res in matched:
        res.obj["spec"]["replicas"] = spec["count"]


def _split_image(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return name, tag


def _apply_image(spec: Obj, resources: list[_Resource]) -> None:
    if set(spec) - {"name", "newName", "newTag"}:
        raise KustomizeError(f"unsupported images entry {spec}")
    for res in resources:
        for pod in _pod_specs(res.obj):
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                name, tag = _split_image(container["image"])
                if name == spec["name"]:
                    name = spec.get("newName", name)
                    tag = str(spec.get("newTag", tag))
                    container["image"] = f"{name}:{tag}" if tag else name


# The parts of the KEDA, Prometheus Operator and Strimzi CRDs the manifests use (from keda.sh_scaledobjects.yaml,
# keda.sh_triggerauthentications.yaml, monitoring.coreos.com_podmonitors.yaml and Strimzi's 04X-Crd-kafkatopic.yaml),
# strict about unknown fields so a typo fails.
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}
CRD_SCHEMAS: dict[tuple[str, str], Obj] = {
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "apiVersion": {"type": "string"},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "idleReplicaCount": {"type": "integer", "minimum": 0},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                # KEDA reads every trigger setting as a string: an unquoted number fails.
                                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                                "authenticationRef": {"type": "object", "required": ["name"]},
                            },
                        },
                    },
                },
            },
        },
        "additionalProperties": False,
    },
    # keda.sh_triggerauthentications.yaml: the secretTargetRef part (each parameter from one key of a Secret).
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "additionalProperties": False,
    },
    ("monitoring.coreos.com/v1", "PodMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PodMonitor"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["selector", "podMetricsEndpoints"],
                "additionalProperties": False,
                "properties": {
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                    },
                    "podMetricsEndpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
                                "relabelings": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "sourceLabels": {"type": "array", "items": {"type": "string"}},
                                            "targetLabel": {"type": "string"},
                                            "action": {"type": "string"},
                                            "regex": {"type": "string"},
                                            "replacement": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
        "additionalProperties": False,
    },
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "kafka.strimzi.io/v1beta2"},
            "kind": {"const": "KafkaTopic"},
            "metadata": {
                **_META,
                "properties": {
                    **_META["properties"],
                    "labels": {
                        "type": "object",
                        "required": ["strimzi.io/cluster"],
                        "additionalProperties": {"type": "string"},
                    },
                },
            },
            "spec": {
                "type": "object",
                "required": ["partitions", "replicas"],
                "additionalProperties": False,
                "properties": {
                    "topicName": {"type": "string", "pattern": r"^[a-zA-Z0-9._-]{1,249}$"},
                    "partitions": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                    "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean"]}},
                },
            },
        },
        "additionalProperties": False,
    },
    # Strimzi's 04X-Crd-kafkauser.yaml (v1beta2): the authentication and simple-authorization parts.
    ("kafka.strimzi.io/v1beta2", "KafkaUser"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "kafka.strimzi.io/v1beta2"},
            "kind": {"const": "KafkaUser"},
            "metadata": {
                **_META,
                "properties": {
                    **_META["properties"],
                    "labels": {
                        "type": "object",
                        "required": ["strimzi.io/cluster"],
                        "additionalProperties": {"type": "string"},
                    },
                },
            },
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "authentication": {
                        "type": "object",
                        "required": ["type"],
                        "additionalProperties": False,
                        "properties": {"type": {"enum": ["tls", "tls-external", "scram-sha-512"]}},
                    },
                    "authorization": {
                        "type": "object",
                        "required": ["type", "acls"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"enum": ["simple"]},
                            "acls": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["resource", "operations"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {"enum": ["allow", "deny"]},
                                        "host": {"type": "string"},
                                        "resource": {
                                            "type": "object",
                                            "required": ["type"],
                                            "additionalProperties": False,
                                            "properties": {
                                                "type": {"enum": ["topic", "group", "cluster", "transactionalId"]},
                                                "name": {"type": "string"},
                                                "patternType": {"enum": ["literal", "prefix"]},
                                            },
                                        },
                                        "operations": {
                                            "type": "array",
                                            "minItems": 1,
                                            "items": {
                                                "enum": [
                                                    "Read",
                                                    "Write",
                                                    "Create",
                                                    "Delete",
                                                    "Alter",
                                                    "Describe",
                                                    "ClusterAction",
                                                    "AlterConfigs",
                                                    "DescribeConfigs",
                                                    "IdempotentWrite",
                                                    "All",
                                                ]
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
        "additionalProperties": False,
    },
}


def validate_object(obj: Obj) -> None:
    """Raise unless ``obj`` is valid: built-in kinds against the Kubernetes JSON schemas (strict), CRDs above."""
    schema = CRD_SCHEMAS.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if schema is not None:
        jsonschema.validate(obj, schema)
        return
    if not _is_builtin(obj):
        raise KustomizeError(f"no schema for {obj['apiVersion']} {obj['kind']}")
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.infra.kustomize", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="kustomization folders")
    parser.add_argument("--validate", action="store_true", help="validate every object instead of printing")
    args = parser.parse_args(argv)
    for path in args.paths:
        objs = build(path)
        if args.validate:
            for obj in objs:
                validate_object(obj)
            kinds = sorted({o["kind"] for o in objs})
            print(f"{path}: {len(objs)} objects valid ({', '.join(kinds)})")  # noqa: T201
        else:
            sys.stdout.write(yaml.safe_dump_all(objs, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
