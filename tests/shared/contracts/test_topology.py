import itertools

import pytest

from shared.contracts.topology import STAGES, TOPOLOGY, Role, input_topics, spec_for, stage_inputs, topic_of
from shared.runtime.settings import TopicSettings


class TestTopology:
    def test_the_stages_in_flow_order(self) -> None:
        """Five stages, in the order DESIGN.md §1 draws them."""
        assert STAGES == ("preprocess", "grounding", "safety", "inference", "postprocess")

    def test_each_stage_reads_what_the_one_before_writes(self) -> None:
        """Every stage's input is among the previous stage's outputs: the chain has no gap."""
        for before, after in itertools.pairwise(TOPOLOGY):
            assert after.input in before.outputs, (before.name, after.name)

    def test_declared_outputs(self) -> None:
        """The table as DESIGN.md §1 draws it: blocked and cached requests skip inference, answers go to REPLY."""
        outputs = {spec.name: spec.outputs for spec in TOPOLOGY}
        assert outputs == {
            "preprocess": (Role.PREPROCESSED,),
            "grounding": (Role.GROUNDED,),
            "safety": (Role.CHECKED, Role.GENERATED),
            "inference": (Role.GENERATED,),
            "postprocess": (Role.TURNS, Role.REPLY, Role.USAGE, Role.CACHE),
        }

    def test_side_inputs(self) -> None:
        """Memory, the cache and quotas read side topics in every replica; ingest commands in a group of their own."""
        sides = {spec.name: {(s.role, s.group) for s in spec.side_inputs} for spec in TOPOLOGY}
        assert sides == {
            "preprocess": {(Role.USAGE, None)},
            "grounding": {(Role.TURNS, None), (Role.INGEST, "ingest")},
            "safety": {(Role.CACHE, None)},
            "inference": set(),
            "postprocess": set(),
        }

    def test_every_stage_may_answer_and_dead_letter(self) -> None:
        """Error answers (REPLY) and DLQ records are among every stage's writes."""
        for spec in TOPOLOGY:
            assert {Role.REPLY, Role.DLQ} <= set(spec.writes())

    def test_ingest_progress_is_among_groundings_writes(self) -> None:
        """A side input's outputs count as the stage's writes."""
        assert Role.INGEST_PROGRESS in spec_for("grounding").writes()
        assert Role.INGEST_PROGRESS not in spec_for("safety").writes()

    def test_unknown_stage_is_named(self) -> None:
        """Asking for a stage the topology lacks names it and the known ones."""
        with pytest.raises(KeyError, match=r"'gateway'.*preprocess"):
            spec_for("gateway")


class TestTopics:
    def test_every_role_has_a_topic_with_the_prefix(self) -> None:
        """Each role's topic is the prefix and its stem; REPLY's default is the responses topic."""
        topics = TopicSettings(prefix="x.")
        assert topic_of(Role.INGEST_PROGRESS, topics) == "x.ingest-progress"
        assert topic_of(Role.REPLY, topics) == "x.responses"
        assert {topic_of(role, topics) for role in Role} <= set(topics.all())

    def test_each_stage_reads_the_topic_before_it(self) -> None:
        """The stage → input topic map follows the flow and uses the prefix."""
        assert stage_inputs(TopicSettings(prefix="x.")) == {
            "preprocess": "x.requests",
            "grounding": "x.preprocessed",
            "safety": "x.grounded",
            "inference": "x.checked",
            "postprocess": "x.generated",
        }

    def test_preprocess_reads_the_tenants_request_topics_too(self) -> None:
        """Tenants with a request topic of their own add it to preprocess's input, after the shared one."""
        topics = TopicSettings(prefix="x.", request_tenants=["acme"])
        assert input_topics(spec_for("preprocess"), topics) == ["x.requests", "x.requests.acme"]
        assert input_topics(spec_for("safety"), topics) == ["x.grounded"]
