"""Reading what clients produce to the request topic.

Two shapes are accepted: the full envelope (``{"request": {...}, ...}``) and the
minimal one any Kafka client can write (``{"messages": [...]}`` with optional
OpenAI-style fields). A missing ``request_id`` is derived from the record itself
(topic, partition, offset, timestamp and the bytes the client wrote), so a redelivered
record keeps its id (idempotency) while nobody but its producer can predict it (issue 23).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import ValidationError

from shared.contracts.envelope import Envelope
from shared.contracts.errors import PoisonMessageError
from shared.runtime.records import load_json
from shared.runtime.runner import ReceivedRecord, parse_envelope

__all__ = ["parse_request", "record_request_id"]

_PARAM_FIELDS = ("max_tokens", "temperature", "top_p", "stop", "seed")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_ROUTING_FIELDS = ("request_id", "conversation_id", "tenant", "reply_to", "deadline")
#: The envelope's sections that stages fill (DESIGN.md §2); a request arriving with one is forged.
_STAGE_FIELDS = ("prepared", "grounding", "safety", "cache", "completion", "response", "chunk", "error", "trail")


def _reject_lone_surrogates(data: dict[str, Any]) -> None:
    """A ``\\ud800`` escape without its pair is text no UTF-8 consumer can read (nor can the answer)."""
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        msg = "request is not valid UTF-8 text: it contains a lone surrogate escape"
        raise PoisonMessageError(msg) from exc


def _reject_stage_sections(data: dict[str, Any]) -> None:
    """A client writes only its own fields: a section a stage owns (a forged ``cache.hit``) is refused (issue 23).

    Empty values pass (``to_bytes`` writes every field, null included, as the SDK sends it).
    """
    forged = sorted(name for name in _STAGE_FIELDS if data.get(name) not in (None, [], {}))
    if data.get("kind", "request") != "request":
        forged.append("kind")
    if forged:
        msg = f"field(s) {', '.join(forged)} are filled by the pipeline, never by a client"
        raise PoisonMessageError(msg)


def record_request_id(record: ReceivedRecord, raw: bytes) -> str:
    """A request id that is the same every time this record is read, and that only its producer can know.

    It was a uuid5 of topic/partition/offset, which anyone could compute for a record they never saw and
    use to claim its id first (issue 23). The record's value and timestamp are hashed in too: a redelivered
    record has both unchanged, another tenant has neither.
    """
    digest = hashlib.sha256()
    for part in (record.topic.encode(), str(record.partition).encode(), str(record.offset).encode()):
        digest.update(part + b"\x00")
    digest.update(str(record.timestamp_ms).encode() + b"\x00")
    digest.update(raw)
    return digest.hexdigest()[:32]


def _from_minimal(data: dict[str, Any]) -> dict[str, Any]:
    known = {"messages", "prompt", "model", "stream", "metadata", "schema_version", *_PARAM_FIELDS, *_ROUTING_FIELDS}
    unknown = sorted(set(data) - known)
    if unknown:
        msg = f"unknown field(s) {', '.join(unknown)}"
        raise PoisonMessageError(msg)
    messages = data.get("messages")
    if messages is None and isinstance(data.get("prompt"), str):
        messages = [{"role": "user", "content": data["prompt"]}]
    request: dict[str, Any] = {"messages": messages}
    for name in ("model", "stream", "metadata"):
        if name in data:
            request[name] = data[name]
    params = {name: data[name] for name in _PARAM_FIELDS if name in data}
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    if params:
        request["params"] = params
    envelope = {name: data[name] for name in _ROUTING_FIELDS if name in data}
    if "schema_version" in data:
        envelope["schema_version"] = data["schema_version"]
    envelope["request"] = request
    return envelope


def parse_request(raw: bytes, record: ReceivedRecord) -> Envelope:
    """Parse a client request in either accepted shape; raises ``PoisonMessageError``."""
    try:
        data = load_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"request is not JSON: {exc}"
        raise PoisonMessageError(msg) from exc
    if not isinstance(data, dict):
        msg = f"request must be a JSON object, not {type(data).__name__}"
        raise PoisonMessageError(msg)
    if _SURROGATE_ESCAPE.search(raw):
        _reject_lone_surrogates(data)
    if "request" not in data:
        data = _from_minimal(data)
    _reject_stage_sections(data)
    if "request_id" not in data:  # hashed only when needed: most clients send their own id
        data["request_id"] = record_request_id(record, raw)
    if not data.get("conversation_id") and record.key:
        try:
            data["conversation_id"] = record.key.decode()
        except UnicodeDecodeError:
            data["conversation_id"] = record.key.hex()
    try:
        return Envelope.model_validate(data)
    except ValidationError:
        return parse_envelope(json.dumps(data, default=str).encode(), record)
