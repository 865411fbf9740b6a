"""infra/k8s/security: the Kafka principals' ACLs are exactly what the code's wiring needs, and nothing wider."""

from __future__ import annotations

import importlib
import itertools
import json
from functools import cache
from pathlib import Path

import pytest
import yaml

from shared.contracts.topology import Role, spec_for, stage_inputs, topic_of
from shared.runtime.settings import TopicSettings
from shared.stack.embedded import STAGES
from tests.infra.helpers import ROOT, STAGE_SETTINGS, settings_env
from tests.infra.kustomize import build, validate_object

USERS = ROOT / "infra" / "k8s" / "security"
#: Tenants with their own request topic in the example users (tenant-acme).
REQUEST_TENANTS = ["acme"]
TOPICS = TopicSettings(request_tenants=REQUEST_TENANTS)
#: Every answer topic starts with this (default responses, gateway replicas', tenants' own).
ANSWERS_PREFIX = TOPICS.responses
IDEMPOTENT = ("cluster", "", "literal", "IdempotentWrite")

Acl = tuple[str, str, str, str]  # resource type, name, pattern type, operation

# What each stage publishes besides its error answers and DLQ records (both of which every stage writes):
# the topology's outputs (shared.contracts.topology; the runner refuses any other).
STAGE_WRITES: dict[str, set[str]] = {
    stage: {topic_of(role, TOPICS) for role in spec_for(stage).writes() if role not in {Role.REPLY, Role.DLQ}}
    for stage in STAGES
}


@cache
def users() -> dict[str, set[Acl]]:
    """Each KafkaUser's ACLs, one (type, name, pattern, operation) per operation."""
    found: dict[str, set[Acl]] = {}
    for doc in yaml.safe_load_all((USERS / "kafka-users.yaml").read_text()):
        assert doc["kind"] == "KafkaUser"
        acls: set[Acl] = set()
        for entry in doc["spec"]["authorization"]["acls"]:
            res = entry["resource"]
            for op in entry["operations"]:
                acls.add((res["type"], res.get("name", ""), res.get("patternType", "literal"), op))
        found[doc["metadata"]["name"]] = acls
    return found


@cache
def wired_reads(stage: str, tenants: Path) -> tuple[set[str], set[str]]:
    """(topics, consumer groups) the stage's real ``create_service`` subscribes to, quotas on (usage is read)."""
    app = importlib.import_module(f"services.{stage}.app")
    env = {"LLMOPS_PREPROCESS_TENANTS_PATH": str(tenants), "LLMOPS_TOPIC_REQUEST_TENANTS": json.dumps(REQUEST_TENANTS)}
    with settings_env(env):
        service = app.create_service(STAGE_SETTINGS[stage]())
    topics: set[str] = set()
    groups: set[str] = set()
    for sub in service.broker.subscribers:
        topics |= set(sub.topic_names)
        if sub.group_id:
            groups.add(sub.group_id)
    return topics, groups


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("acl") / "tenants.yaml"
    path.write_text("tenants: {acme: {requests_per_minute: 60}}\n")
    return path


def expected_stage_acls(stage: str, tenants: Path) -> set[Acl]:
    reads, groups = wired_reads(stage, tenants)
    writes = STAGE_WRITES[stage] | {TOPICS.dlq}
    return (
        {("topic", t, "literal", "Read") for t in reads}
        | {("group", g, "literal", "Read") for g in groups}
        | {("topic", t, "literal", "Write") for t in writes}
        | {("topic", ANSWERS_PREFIX, "prefix", "Write"), IDEMPOTENT}
    )


class TestStagePrincipals:
    @pytest.mark.parametrize("stage", STAGES)
    def test_exactly_what_the_wiring_needs(self, stage: str, tenants: Path) -> None:
        """Each stage's user reads its subscribed topics and groups, writes its outputs, the DLQ and answers; no more."""
        assert users()[f"llmops-{stage}"] == expected_stage_acls(stage, tenants)

    @pytest.mark.parametrize("stage", STAGES)
    def test_input_topic_and_group_come_from_the_code(self, stage: str, tenants: Path) -> None:
        """The stage's input topic (shared.contracts.topology) and group llmops-<stage> are among its reads."""
        reads, groups = wired_reads(stage, tenants)
        assert stage_inputs(TOPICS)[stage] in reads
        assert f"llmops-{stage}" in groups

    def test_each_stage_writes_the_next_ones_input(self) -> None:
        """The flow order of stage_inputs: every stage may write the topic the next stage reads."""
        order = list(stage_inputs(TOPICS).items())
        for (stage, _), (_, next_input) in itertools.pairwise(order):
            assert ("topic", next_input, "literal", "Write") in users()[f"llmops-{stage}"]

    def test_every_written_topic_has_a_reader(self, tenants: Path) -> None:
        """Nothing a stage writes is unread (the DLQ and usage excepted: operators and quotas read those)."""
        read = set().union(*(wired_reads(s, tenants)[0] for s in STAGES)) | {TOPICS.ingest_progress}
        written = set().union(*STAGE_WRITES.values())
        assert written <= read


class TestNoWideRights:
    def test_no_wildcards(self) -> None:
        """No ACL names `*`; only answer-topic and gateway-topic prefixes are prefixed patterns."""
        for user, acls in users().items():
            for _kind, name, pattern, op in acls:
                assert "*" not in name, (user, name)
                if pattern == "prefix":
                    assert name.startswith(ANSWERS_PREFIX), (user, name, op)

    def test_prefixed_writes_are_answers_only(self) -> None:
        """The only prefixed Write is the answers prefix, and only stages have it (not the gateway, not tenants)."""
        holders = {u for u, acls in users().items() if ("topic", ANSWERS_PREFIX, "prefix", "Write") in acls}
        assert holders == {f"llmops-{s}" for s in STAGES}
        for acls in users().values():
            assert {a for a in acls if a[2] == "prefix" and a[3] == "Write"} <= {
                ("topic", ANSWERS_PREFIX, "prefix", "Write")
            }

    def test_named_topics_exist(self) -> None:
        """Every literal topic in an ACL is a pipeline topic (tenants' request topics included) or a tenant's answers."""
        for user, acls in users().items():
            for kind, name, pattern, _ in acls:
                if kind == "topic" and pattern == "literal":
                    assert name in TOPICS.all() or name.startswith(f"{ANSWERS_PREFIX}."), (user, name)

    def test_no_cluster_or_admin_rights(self) -> None:
        """Cluster rights stop at IdempotentWrite; nobody may Alter, Delete or grant ACLs."""
        for acls in users().values():
            assert {a for a in acls if a[0] == "cluster"} <= {IDEMPOTENT}
            assert not {a for a in acls if a[3] in {"All", "Alter", "AlterConfigs", "Delete", "ClusterAction"}}

    def test_users_authenticate_with_scram(self) -> None:
        """Every user is a SCRAM-SHA-512 principal of the cluster `llmops` with simple authorization."""
        for doc in yaml.safe_load_all((USERS / "kafka-users.yaml").read_text()):
            assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "llmops"
            assert doc["spec"]["authentication"]["type"] == "scram-sha-512"
            assert doc["spec"]["authorization"]["type"] == "simple"


class TestClients:
    def test_gateway(self) -> None:
        """The gateway writes requests, reads and creates only its own reply topics, describes the stages' lag."""
        acls = users()["llmops-gateway"]
        gateway_topics = TOPICS.name("responses.gateway-")
        # The shared topic, and each tenant's own (LLMOPS_GATEWAY_TENANT_TOPICS: the key's tenant, on its topic).
        assert {a for a in acls if a[3] == "Write"} == {
            ("topic", t, "literal", "Write") for t in (TOPICS.requests, *TOPICS.tenant_request_topics())
        }
        assert {a for a in acls if a[3] in {"Read", "Create"}} == {
            ("topic", gateway_topics, "prefix", "Read"),
            ("topic", gateway_topics, "prefix", "Create"),
        }
        described = {(a[0], a[1]) for a in acls if a[3] == "Describe"}
        assert described == {("topic", t) for t in stage_inputs(TOPICS).values()} | {
            ("group", f"llmops-{s}") for s in STAGES
        }

    def test_keda_only_describes_the_stages_lag(self) -> None:
        """KEDA's lag trigger may describe each stage's input topic and group (the ScaledObjects'), nothing else."""
        objs = build(ROOT / "infra" / "k8s" / "overlays" / "production")
        triggers = [o["spec"]["triggers"][0]["metadata"] for o in objs if o["kind"] == "ScaledObject"]
        assert users()["llmops-keda"] == {("topic", t["topic"], "literal", "Describe") for t in triggers} | {
            ("group", t["consumerGroup"], "literal", "Describe") for t in triggers
        }

    def test_tenant_reads_only_its_own_topic(self) -> None:
        """A tenant's client writes its own request topic and reads its literal answer topic: no other's, no prefix."""
        assert users()["tenant-acme"] == {
            ("topic", TOPICS.tenant_requests("acme"), "literal", "Write"),
            ("topic", TOPICS.name("responses.acme"), "literal", "Read"),
        }

    def test_a_tenant_writes_only_its_own_request_topic(self) -> None:
        """T7: a tenant's request topic is written by that tenant and the gateway only; tenants never write the
        shared topic (where only the default tenant may be claimed) nor another tenant's."""
        for topic, tenant in TOPICS.tenant_request_topics().items():
            writers = {u for u, acls in users().items() if ("topic", topic, "literal", "Write") in acls}
            assert writers == {f"tenant-{tenant}", "llmops-gateway"}, (topic, writers)
        for user, acls in users().items():
            if user.startswith("tenant-"):
                written = {a[1] for a in acls if a[3] == "Write"}
                assert written == {TOPICS.tenant_requests(user.removeprefix("tenant-"))}, (user, written)

    def test_preprocess_reads_every_tenant_request_topic(self, tenants: Path) -> None:
        """The tenants' request topics are among preprocess's real subscriptions, in its own group."""
        reads, groups = wired_reads("preprocess", tenants)
        assert set(TOPICS.tenant_request_topics()) <= reads
        assert groups >= {"llmops-preprocess"}

    def test_kustomization_renders_the_users(self) -> None:
        """`kubectl apply -k infra/k8s/security` creates every user, in the llmops namespace."""
        objs = build(USERS)
        assert {o["metadata"]["name"] for o in objs if o["kind"] == "KafkaUser"} == set(users())
        assert {o["metadata"]["namespace"] for o in objs} == {"llmops"}
        for obj in objs:
            validate_object(obj)  # Strimzi's KafkaUser schema: a misspelt field or operation fails


def test_stage_list_matches() -> None:
    """The users cover every stage the embedded stack runs."""
    assert set(STAGES) == set(STAGE_WRITES)
    assert {f"llmops-{s}" for s in STAGES} <= set(users())
