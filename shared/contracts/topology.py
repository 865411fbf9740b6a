"""The pipeline's topology, declared once: each stage's input, its outputs and the side topics it reads.

Topics are named by role (``Role``); ``TopicSettings`` turns a role into a topic name. The runner
(which topic an output goes to), ``StageService`` (what it subscribes), ``llmops up`` (which
stages exist), the lag probe, the AsyncAPI generator and the ACL checks all read this table,
so adding a topic or a stage is one edit here.

Example:
    >>> spec_for("safety").outputs
    (<Role.CHECKED: 'checked'>, <Role.GENERATED: 'generated'>)
    >>> topic_of(Role.CHECKED, TopicSettings())
    'llmops.checked'

"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.runtime.settings import TopicSettings

__all__ = [
    "STAGES",
    "TOPOLOGY",
    "Role",
    "SideInput",
    "StageSpec",
    "input_topics",
    "spec_for",
    "stage_inputs",
    "topic_of",
]


class Role(StrEnum):
    """What a topic is for; its name is the topic prefix plus ``TopicSettings``' stem for the role."""

    REQUESTS = "requests"
    PREPROCESSED = "preprocessed"
    GROUNDED = "grounded"
    CHECKED = "checked"
    GENERATED = "generated"
    #: The request's own reply topic (``reply_to``; ``llmops.responses`` by default): chosen per envelope.
    REPLY = "reply"
    TURNS = "turns"
    USAGE = "usage"
    CACHE = "cache"
    INGEST = "ingest"
    INGEST_PROGRESS = "ingest_progress"
    DLQ = "dlq"


@dataclass(frozen=True)
class SideInput:
    """A topic a stage reads besides its input.

    ``group``: read in a consumer group of its own (``<stage group>-<group>``), each record once across
    replicas (grounding's ingest commands); ``None``: every replica reads all of it from the beginning
    to build its own state (turns for memory, cache entries, usage for quotas).
    """

    role: Role
    group: str | None = None
    #: Roles its handler may write (grounding's ingest answers on ``INGEST_PROGRESS``).
    outputs: tuple[Role, ...] = ()


@dataclass(frozen=True)
class StageSpec:
    """One stage: the role it consumes in its group ``llmops-<name>``, the roles it writes, its side inputs.

    Every stage may also write ``DLQ`` and error answers on ``REPLY``.
    """

    name: str
    input: Role
    outputs: tuple[Role, ...]
    side_inputs: tuple[SideInput, ...] = ()

    def writes(self) -> tuple[Role, ...]:
        """Every role the stage may publish on: its outputs, its side inputs' outputs, error answers, the DLQ."""
        side = tuple(role for side in self.side_inputs for role in side.outputs)
        return tuple(dict.fromkeys((*self.outputs, *side, Role.REPLY, Role.DLQ)))


#: The five stages in flow order (DESIGN.md §1).
TOPOLOGY: tuple[StageSpec, ...] = (
    StageSpec("preprocess", Role.REQUESTS, (Role.PREPROCESSED,), (SideInput(Role.USAGE),)),
    StageSpec(
        "grounding",
        Role.PREPROCESSED,
        (Role.GROUNDED,),
        (SideInput(Role.TURNS), SideInput(Role.INGEST, group="ingest", outputs=(Role.INGEST_PROGRESS,))),
    ),
    # A blocked request, or one the cache answers, goes straight to postprocess (GENERATED).
    StageSpec("safety", Role.GROUNDED, (Role.CHECKED, Role.GENERATED), (SideInput(Role.CACHE),)),
    StageSpec("inference", Role.CHECKED, (Role.GENERATED,)),
    # The turn before the answer (memory is ahead of the client's next turn); usage and cache entry after it.
    StageSpec("postprocess", Role.GENERATED, (Role.TURNS, Role.REPLY, Role.USAGE, Role.CACHE)),
)

#: Stage names in flow order.
STAGES: tuple[str, ...] = tuple(spec.name for spec in TOPOLOGY)


def spec_for(stage: str) -> StageSpec:
    """The declared spec of ``stage``."""
    for spec in TOPOLOGY:
        if spec.name == stage:
            return spec
    msg = f"unknown stage {stage!r}: one of {', '.join(STAGES)}"
    raise KeyError(msg)


def topic_of(role: Role, topics: TopicSettings) -> str:
    """The topic of ``role`` (``REPLY``: the default reply topic; a request's own ``reply_to`` may differ)."""
    if role is Role.REPLY:
        return topics.responses
    name: str = getattr(topics, role.value)
    return name


def input_topics(spec: StageSpec, topics: TopicSettings) -> list[str]:
    """The topics a stage's group consumes: its input role's topic (requests: with the tenants' own topics)."""
    if spec.input is Role.REQUESTS:
        return [topics.requests, *topics.tenant_request_topics()]
    return [topic_of(spec.input, topics)]


def stage_inputs(topics: TopicSettings) -> dict[str, str]:
    """Each stage's main input topic (its consumer group ``llmops-<stage>`` reads it), in flow order."""
    return {spec.name: topic_of(spec.input, topics) for spec in TOPOLOGY}
