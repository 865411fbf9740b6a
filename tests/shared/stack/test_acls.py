"""The stage principals' ACLs come from the topology (shared/stack/acls.py's stage_acls)."""

from __future__ import annotations

import pytest

from shared.contracts.topology import STAGES, Role, spec_for, topic_of
from shared.runtime.settings import TopicSettings
from shared.stack.acls import Acl, grants, stage_acls

TOPICS = TopicSettings(request_tenants=["acme"])


class TestStageAcls:
    @pytest.mark.parametrize("stage", STAGES)
    def test_writes_are_the_topology_outputs_and_nothing_else(self, stage: str) -> None:
        """Every declared output may be written; no other pipeline topic may."""
        acls = stage_acls(stage, TOPICS)
        writes = {topic_of(role, TOPICS) for role in spec_for(stage).writes() if role is not Role.REPLY}
        for topic in TOPICS.all():
            answer = topic.startswith(TOPICS.responses)
            assert grants(acls, f"llmops-{stage}", "Write", topic) == (topic in writes or answer), topic

    def test_tenant_request_topics_are_read_by_preprocess_only(self) -> None:
        """A tenant's own request topic joins preprocess's input; no other stage reads it."""
        readers = {s for s in STAGES if grants(stage_acls(s, TOPICS), f"llmops-{s}", "Read", "llmops.requests.acme")}
        assert readers == {"preprocess"}

    def test_a_grouped_side_input_reads_its_own_group(self) -> None:
        """Grounding's ingest commands are consumed in group llmops-grounding-ingest; turns in no group."""
        groups = {a.name for a in stage_acls("grounding", TOPICS) if a.resource == "group"}
        assert groups == {"llmops-grounding", "llmops-grounding-ingest"}

    def test_answers_go_under_the_responses_prefix(self) -> None:
        """Any reply_to under llmops.responses may be answered, with idempotent production."""
        acls = stage_acls("safety", TOPICS)
        assert Acl("llmops-safety", "Write", "prefixed", "topic", "llmops.responses") in acls
        assert grants(acls, "llmops-safety", "Write", "llmops.responses.acme")
        assert Acl("llmops-safety", "IdempotentWrite", "literal", "cluster", "kafka-cluster") in acls
