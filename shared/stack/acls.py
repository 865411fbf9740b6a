"""The secure profile's principals and ACLs (``infra/secure/kafka-acls.txt``) applied to a broker from Python.

The compose profile applies the same file with ``infra/secure/kafka-init.sh``, one JVM per command (about 40
of them: minutes on two cores). Here the ACLs go in one admin connection (librdkafka's, from confluent-kafka)
and the principals' SCRAM-SHA-512 credentials are created when the broker's log directory is formatted
(``SecureListener.users``), which is how KRaft bootstraps them. Same file, same principals, same ACLs.

Example:
    >>> acls = read_acls(Path("infra/secure/kafka-acls.txt"))
    >>> await apply_acls("127.0.0.1:9091", acls)  # the broker's plaintext ADMIN listener (a super user)

"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shared.contracts.topology import Role, input_topics, spec_for, topic_of
from shared.runtime.settings import TopicSettings

__all__ = ["Acl", "apply_acls", "grants", "matrix_markdown", "parse_acls", "principals", "read_acls", "stage_acls"]

ResourceType = Literal["topic", "group", "cluster"]
PatternType = Literal["literal", "prefixed"]


@dataclass(frozen=True)
class Acl:
    """One ALLOW entry: ``principal`` may ``operation`` on the resource (``name`` matched by ``pattern``)."""

    principal: str
    operation: str
    pattern: PatternType
    resource: ResourceType
    name: str

    @classmethod
    def parse(cls, line: str) -> Acl:
        """A line of kafka-acls.txt: ``principal operation pattern resource name``."""
        fields = line.split()
        if len(fields) != 5:  # noqa: PLR2004 - the file's five columns
            msg = f"not an ACL line (principal operation pattern resource name): {line!r}"
            raise ValueError(msg)
        principal, operation, pattern, resource, name = fields
        if pattern not in {"literal", "prefixed"} or resource not in {"topic", "group", "cluster"}:
            msg = f"unknown pattern or resource in {line!r}"
            raise ValueError(msg)
        return cls(principal, operation, pattern, resource, name)  # type: ignore[arg-type]


def parse_acls(text: str) -> list[Acl]:
    """Every ACL of a kafka-acls.txt text (comments and blank lines skipped)."""
    lines = (line.strip() for line in text.splitlines())
    return [Acl.parse(line) for line in lines if line and not line.startswith("#")]


def read_acls(path: Path) -> list[Acl]:
    """Every ACL of the file."""
    return parse_acls(path.read_text())


def stage_acls(stage: str, topics: TopicSettings) -> list[Acl]:
    """What the topology gives stage ``stage``'s principal ``llmops-<stage>``: nothing more, nothing less.

    It reads its input topics in group ``llmops-<stage>`` and each side input (in ``llmops-<stage>-<group>``
    where the side input has a group), writes its outputs and the DLQ, answers on any topic under the
    responses prefix (a request's ``reply_to``), and produces idempotently.

    Example:
        >>> [f"{a.operation} {a.name}" for a in stage_acls("inference", TopicSettings())][:3]
        ['Read llmops.checked', 'Read llmops-inference', 'Write llmops.generated']

    """
    spec = spec_for(stage)
    user = f"llmops-{stage}"
    group = f"llmops-{stage}"
    acls = [Acl(user, "Read", "literal", "topic", topic) for topic in input_topics(spec, topics)]
    acls.append(Acl(user, "Read", "literal", "group", group))
    for side in spec.side_inputs:
        acls.append(Acl(user, "Read", "literal", "topic", topic_of(side.role, topics)))
        if side.group:
            acls.append(Acl(user, "Read", "literal", "group", f"{group}-{side.group}"))
    written = [role for role in spec.writes() if role is not Role.REPLY]
    acls += [Acl(user, "Write", "literal", "topic", topic_of(role, topics)) for role in dict.fromkeys(written)]
    acls.append(Acl(user, "Write", "prefixed", "topic", topics.responses))
    acls.append(Acl(user, "IdempotentWrite", "literal", "cluster", "kafka-cluster"))
    return acls


def principals(acls: list[Acl]) -> list[str]:
    """The principals the ACLs name, in file order."""
    return list(dict.fromkeys(acl.principal for acl in acls))


def _bindings(acls: list[Acl]) -> list[Any]:
    from confluent_kafka.admin import (  # noqa: PLC0415 - a test and dev tool's dependency, loaded on use
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    resources = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.BROKER}
    patterns = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}
    operations = {
        "Read": AclOperation.READ,
        "Write": AclOperation.WRITE,
        "Create": AclOperation.CREATE,
        "Describe": AclOperation.DESCRIBE,
        "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE,
        "Alter": AclOperation.ALTER,
        "Delete": AclOperation.DELETE,
    }
    return [
        AclBinding(
            resources[acl.resource],
            acl.name,
            patterns[acl.pattern],
            f"User:{acl.principal}",
            "*",
            operations[acl.operation],
            AclPermissionType.ALLOW,
        )
        for acl in acls
    ]


async def apply_acls(admin_bootstrap: str, acls: list[Acl], *, timeout_s: float = 60.0) -> None:
    """Create every ACL through ``admin_bootstrap`` (a listener whose principal may alter ACLs)."""
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - see _bindings

    def create() -> None:
        admin = AdminClient({"bootstrap.servers": admin_bootstrap})
        futures = admin.create_acls(_bindings(acls), request_timeout=timeout_s)
        for future in futures.values():
            future.result(timeout=timeout_s)

    await asyncio.to_thread(create)


def grants(acls: list[Acl], principal: str, operation: str, topic: str) -> bool:
    """Whether the ACLs allow ``principal`` to ``operation`` on ``topic`` (a literal or prefixed match)."""
    return any(
        acl.principal == principal
        and acl.operation == operation
        and acl.resource == "topic"
        and (acl.name == topic if acl.pattern == "literal" else topic.startswith(acl.name))
        for acl in acls
    )


#: The matrix's letters, in the order a cell lists them.
_LETTERS = {"Read": "R", "Write": "W", "Create": "C", "Describe": "D"}


def matrix_markdown(acls: list[Acl], topics: list[str]) -> str:
    """A table: a row per topic, a column per principal, each cell the operations allowed there (R W C D, or ·)."""
    names = principals(acls)
    header = "| topic | " + " | ".join(f"`{p}`" for p in names) + " |"
    rows = [header, "|---|" + "---|" * len(names)]
    for topic in topics:
        cells = []
        for principal in names:
            letters = "".join(letter for op, letter in _LETTERS.items() if grants(acls, principal, op, topic))
            cells.append(letters or "·")
        rows.append(f"| `{topic}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)
