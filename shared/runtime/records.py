"""Reading input records: where each came from, the envelope parsed from it, and what a broken one still tells.

``StageRunner`` (``shared.runtime.runner``) uses these to parse every input and, for a record that is
not a valid envelope, to salvage enough routing (request id, reply topic, conversation) to answer it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from pydantic import ValidationError

from shared.contracts.envelope import Envelope
from shared.contracts.errors import PoisonMessageError

__all__ = ["MAX_JSON_DEPTH", "TOPIC_NAME", "ReceivedRecord", "load_json", "parse_envelope", "salvage_routing"]

#: A legal Kafka topic name.
TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_MAX_ID_CHARS = 128
#: The deepest JSON nesting a producer may send: an envelope nests 6 deep, a ``json_schema`` a few more.
MAX_JSON_DEPTH = 64


def load_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that fails only with ``ValueError``: too deep a nesting is one too (issue 23).

    ``json.loads`` raises ``RecursionError`` (not a ``ValueError``) for a few thousand nested
    brackets; uncaught, it rewound the batch and the record came back forever.

    Example:
        >>> load_json(b"[" * 100 + b"]" * 100)
        Traceback (most recent call last):
        ValueError: JSON nested deeper than 64 levels

    """
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        msg = f"JSON nested deeper than {max_depth} levels"
        raise ValueError(msg) from exc
    _check_depth(data, max_depth)
    return data


def _check_depth(data: Any, max_depth: int) -> None:
    """Raise ``ValueError`` when ``data`` nests deeper than ``max_depth``; iterative, linear in the nodes."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > max_depth:
            msg = f"JSON nested deeper than {max_depth} levels"
            raise ValueError(msg)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


@dataclass(frozen=True)
class ReceivedRecord:
    """Where an input message came from (kept for DLQ records and derived ids)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    #: The record's timestamp (ms since the epoch; the producer's send time unless the topic logs append time).
    timestamp_ms: int | None = None
    #: The record's headers (``traceparent`` among them), as the consumer returned them.
    headers: tuple[tuple[str, bytes], ...] = ()
    #: Among the first records read from its partition since this replica got it: the previous owner may have
    #: handled it already (at least once; ``shared.runtime.redelivery``).
    maybe_redelivered: bool = False

    @classmethod
    def from_consumer_record(cls, record: Any) -> ReceivedRecord:
        """Build from an aiokafka ``ConsumerRecord`` (or anything with the same attributes)."""
        timestamp = getattr(record, "timestamp", None)
        return cls(
            topic=str(getattr(record, "topic", "")),
            partition=int(getattr(record, "partition", 0) or 0),
            offset=int(getattr(record, "offset", 0) or 0),
            key=getattr(record, "key", None),
            timestamp_ms=timestamp if isinstance(timestamp, int) else None,
            headers=tuple((str(k), bytes(v or b"")) for k, v in getattr(record, "headers", None) or ()),
        )

    def header_map(self) -> dict[str, str]:
        """Headers as text (a later value of a repeated key wins), e.g. for a trace propagator."""
        return {key: value.decode("utf-8", "replace") for key, value in self.headers}

    def queued_ms(self, now: datetime) -> float | None:
        """From the record's send to ``now``: the hop into this stage (broker, fetch wait, consumer)."""
        if self.timestamp_ms is None:
            return None
        return round(now.timestamp() * 1000 - self.timestamp_ms, 1)


def parse_envelope(raw: bytes, _record: ReceivedRecord) -> Envelope:
    """Parse an envelope between stages; anything unreadable is a ``PoisonMessageError``."""
    try:
        return Envelope.from_bytes(raw)
    except ValidationError as exc:
        raise PoisonMessageError(_short_validation_error(exc)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessageError(f"not a JSON envelope: {exc}") from exc


def _short_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def salvage_routing(raw: bytes) -> tuple[str | None, str | None, str]:
    """Best effort: read request_id, reply_to and conversation from a message that failed to parse."""
    try:
        # Invalid UTF-8 elsewhere in the message must not hide a readable request id.
        data = load_json(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None, None, ""
    if not isinstance(data, dict):
        return None, None, ""
    request_id = data.get("request_id")
    reply_to = data.get("reply_to")
    conversation = data.get("conversation_id")
    return (
        request_id if _usable_id(request_id) and 0 < len(request_id) <= _MAX_ID_CHARS else None,
        reply_to if isinstance(reply_to, str) and TOPIC_NAME.match(reply_to) else None,
        conversation if _usable_id(conversation) and len(conversation) <= _MAX_ID_CHARS else "",
    )


def _usable_id(value: object) -> TypeGuard[str]:
    """A string that can go back out in an answer (lone surrogates cannot be encoded)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
