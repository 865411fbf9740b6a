"""The envelope: one pydantic model that travels the whole pipeline (DESIGN.md §2).

Each stage fills its own section and appends one record to ``trail``; no stage
rewrites another's section. ``schema_version`` is checked on every hop so a
message from an incompatible producer is dead-lettered instead of misread.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "SCHEMA_VERSION",
    "CacheHit",
    "CacheInfo",
    "ChatMessage",
    "Chunk",
    "Citation",
    "Completion",
    "Correction",
    "Document",
    "Entity",
    "Envelope",
    "ErrorInfo",
    "Finding",
    "Grounding",
    "MemoryTurn",
    "Prepared",
    "Request",
    "Response",
    "Safety",
    "SamplingParams",
    "TrailRecord",
    "Usage",
    "new_request_id",
]

SCHEMA_VERSION: Literal[1] = 1

Role = Literal["system", "user", "assistant"]


def new_request_id() -> str:
    """Return a fresh random request id."""
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Section):
    """One chat message, as in the OpenAI chat API."""

    role: Role = Field(description="Who said it: system, user or assistant.")
    content: str = Field(description="The message text.")


class SamplingParams(_Section):
    """Generation parameters the client asks for."""

    max_tokens: int = Field(default=256, ge=1, le=32768, description="Most tokens to generate.")
    temperature: float = Field(default=0.2, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    stop: list[str] = Field(default_factory=list, description="Extra stop sequences.")
    seed: int | None = Field(default=None, description="Sampling seed, for repeatable answers.")
    top_k: int | None = Field(
        default=None, ge=0, description="Top-k sampling (0 = off); the model's default when absent."
    )
    min_p: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Min-p sampling; the model's default when absent."
    )
    repeat_penalty: float | None = Field(
        default=None,
        gt=0.0,
        le=2.0,
        description="Penalty on repeated tokens (1 = off); the model's default when absent.",
    )
    json_schema: dict[str, Any] | None = Field(
        default=None, description="Constrain the output to JSON matching this schema (a llama.cpp grammar)."
    )


class Request(_Section):
    """What the client asked for."""

    messages: list[ChatMessage] = Field(min_length=1, description="The chat so far; the last is the user's turn.")
    model: str | None = Field(default=None, description="Registry name of the model; the default when absent.")
    params: SamplingParams = Field(default_factory=SamplingParams)
    stream: bool = Field(default=False, description="Ask for token chunks as they are generated.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Free-form client labels.")


class Correction(_Section):
    """One typo correction preprocess made (``position`` is the offset in the cleaned text)."""

    original: str = Field(description="The word as the user wrote it.")
    corrected: str = Field(description="The word it was replaced with.")
    position: int = Field(ge=0, description="Character offset of the word in the text before correction.")
    message_index: int = Field(default=-1, description="Index in the messages; -1 for the last.")


class Prepared(_Section):
    """Filled by preprocess: the cleaned request and what was changed."""

    messages: list[ChatMessage] = Field(description="The request's messages after cleaning.")
    text: str = Field(description="The cleaned text of the last user message.")
    changes: list[str] = Field(default_factory=list, description="Names of the repairs applied.")
    corrections: list[Correction] = Field(default_factory=list, description="Typo corrections made.")
    language: str | None = Field(default=None, description="Detected language code.")
    language_confidence: float | None = Field(default=None, ge=0.0, le=1.0, description="Detector confidence.")
    model: str = Field(description="The registry model the request is served by (an alias's chosen variant).")
    alias: str | None = Field(
        default=None, description="The registry alias the request named, when it named one; ``model`` is its variant."
    )
    token_count: int = Field(ge=0, description="Prompt tokens with the model's chat template.")
    token_budget: int = Field(ge=0, description="Context size minus the tokens reserved for the answer.")
    dropped_messages: int = Field(
        default=0, ge=0, description="Oldest history messages dropped to fit the budget (system messages are kept)."
    )
    embedding: str | None = Field(
        default=None,
        description="Embedding of the cleaned text: base64 little-endian float32 (shared.text.embedder).",
    )
    source: str | None = Field(
        default=None,
        description=(
            "The request record it was read from (topic/partition/offset): one served request whatever its "
            "client-chosen id, so a reused request id is counted and billed each time, a redelivery once."
        ),
    )


class MemoryTurn(_Section):
    """One earlier turn of the same conversation."""

    request_id: str
    user: str
    assistant: str


class Document(_Section):
    """A retrieved document chunk; ``grounding.documents[i]`` is the one the prompt numbers ``[i + 1]``."""

    id: str
    source: str
    score: float
    text: str
    title: str | None = Field(default=None, description="The title of the document the chunk is from.")
    heading: str | None = Field(default=None, description="The heading path the chunk sits under.")


class Entity(_Section):
    """A named entity found in the prompt."""

    text: str
    label: str
    start: int
    end: int


class Grounding(_Section):
    """Filled by grounding: the context added and the assembled prompt."""

    memory: list[MemoryTurn] = Field(default_factory=list)
    documents: list[Document] = Field(default_factory=list)
    entities: list[Entity] = Field(default_factory=list)
    template_id: str
    template_version: int
    messages: list[ChatMessage] = Field(description="The final chat messages for the model.")
    prompt: str = Field(description="The same prompt rendered as plain text, for models without a chat template.")
    warnings: list[str] = Field(
        default_factory=list, description="What was skipped and why, e.g. retrieval when the store is down."
    )


class Citation(_Section):
    """A numbered reference in the answer, mapped to the document it cites."""

    number: int = Field(ge=1, description="The number the answer uses, e.g. 1 for [1] (the document's number).")
    document_id: str
    source: str = Field(description="Where the document came from (path or URL).")
    title: str | None = None
    inferred: bool = Field(
        default=False,
        description="The answer has no mark for it: postprocess found the answer's words in this document.",
    )


class Finding(_Section):
    """One thing a safety check found."""

    check: str = Field(description="Which check found it, e.g. 'pii.email'.")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    severity: Literal["low", "medium", "high"] = "medium"
    action: Literal["redact", "block", "warn", "drop"] = Field(description="'drop': a retrieved chunk was removed.")
    message_index: int = Field(default=-1, description="Index in prepared.messages; -1 for the last.")
    type: str | None = Field(default=None, description="Finding type, e.g. 'EMAIL', 'AWS_SECRET_KEY', 'OVERRIDE'.")
    score: float | None = Field(default=None, description="The check's confidence or similarity (1.0 for patterns).")
    document_id: str | None = Field(default=None, description="The retrieved chunk it was found in, if any.")


class Safety(_Section):
    """Filled by safety: the verdict and its reasons."""

    verdict: Literal["allow", "redact", "block"]
    findings: list[Finding] = Field(default_factory=list)
    category: str | None = Field(default=None, description="Why a request was blocked.")
    policy_version: int = 1
    policy: str | None = Field(
        default=None,
        description="The named policy it was checked under: its tenant's, or a shadow request's `policy` metadata.",
    )
    messages: list[ChatMessage] | None = Field(default=None, description="The prompt after redaction, when redacted.")
    prompt: str | None = Field(default=None, description="The plain-text prompt after redaction, when redacted.")
    refusal: str | None = Field(default=None, description="What the user is told when the request is blocked.")
    placeholders: dict[str, str] = Field(
        default_factory=dict,
        description="Redaction map, placeholder to original value (e.g. '<EMAIL_1>' to the address); never logged.",
    )
    restore_placeholders: bool = Field(
        default=False, description="Whether postprocess may put the user's own values back into the answer."
    )
    dropped_documents: list[str] = Field(
        default_factory=list, description="Ids of retrieved chunks removed for injected instructions."
    )


class Completion(_Section):
    """Filled by inference."""

    text: str
    model: str
    tokens_in: int = Field(ge=0)
    tokens_out: int = Field(ge=0)
    finish_reason: str | None = None
    time_to_first_token_ms: float | None = None
    generation_ms: float = 0.0
    tokens_per_s: float | None = None
    gpu_layers: int = 0
    cached_tokens: int = Field(default=0, ge=0, description="Prompt tokens reused from the KV cache, not recomputed.")


class Usage(_Section):
    """Tokens a request used, as in the OpenAI API."""

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class Response(_Section):
    """Filled by postprocess: what the user sees."""

    text: str
    refused: bool = False
    changes: list[str] = Field(default_factory=list, description="Names of the polish steps applied.")
    citations: list[Citation] = Field(default_factory=list)
    truncated: bool = Field(default=False, description="Generation hit max_tokens and the ending was trimmed.")
    findings: list[Finding] = Field(
        default_factory=list, description="What the output checks found (offsets in the polished answer, no values)."
    )
    usage: Usage | None = Field(default=None, description="Tokens used, from the completion.")
    cached: bool = Field(default=False, description="Answered from the semantic cache, without inference.")
    cached_from: str | None = Field(default=None, description="The request id whose answer the cache gave.")


class CacheHit(_Section):
    """A cached answer similar enough to be given instead of generating one."""

    request_id: str = Field(description="The request whose answer this is.")
    similarity: float = Field(description="Cosine of this prompt's embedding and the cached one's.")
    text: str = Field(description="The answer as it was checked and sent then.")
    citations: list[Citation] = Field(default_factory=list)
    model: str
    tokens_in: int = Field(default=0, ge=0, description="Prompt tokens the original request used (saved now).")
    tokens_out: int = Field(default=0, ge=0, description="Completion tokens the original request used (saved now).")


class CacheInfo(_Section):
    """Filled by safety when the tenant uses the semantic cache: the lookup key, and the hit if any."""

    key: str = Field(description="Exact part of the cache key (tenant, model, template, policy, context hash).")
    hit: CacheHit | None = Field(default=None, description="Set when the answer comes from the cache.")


class Chunk(_Section):
    """One piece of a streamed answer (``kind == "chunk"``), in order by ``seq`` under the same key."""

    seq: int = Field(ge=0, description="Sequence number, from 0, per request.")
    text: str = Field(description="The text of this piece.")


class ErrorInfo(_Section):
    """A failure, carried to the client as the answer."""

    code: str = Field(description="Stable machine-readable code, e.g. 'prompt_too_long'.")
    message: str
    stage: str
    retriable: bool = False
    retry_after_s: float | None = Field(default=None, ge=0, description="When a retry can succeed (quota_exceeded).")


class TrailRecord(_Section):
    """One stage's passage."""

    stage: str
    replica: str
    started_at: datetime
    duration_ms: float
    outcome: str


class Envelope(BaseModel):
    """The message every stage reads and writes.

    Example:
        >>> env = Envelope(request=Request(messages=[ChatMessage(role="user", content="Hi")]))
        >>> env.schema_version
        1

    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    request_id: str = Field(default_factory=new_request_id, min_length=1, max_length=128)
    conversation_id: str = Field(default="", max_length=128, description="Kafka key; empty means the request id.")
    tenant: str = Field(default="default", min_length=1, max_length=64)
    reply_to: str | None = Field(default=None, description="Topic for the answer; the responses topic when absent.")
    deadline: datetime | None = Field(default=None, description="Absolute time after which the answer is useless.")
    created_at: datetime = Field(default_factory=_now)
    kind: Literal["request", "chunk", "final"] = "request"
    request: Request | None = Field(
        default=None, description="Absent only in the error answer to a message that could not be read."
    )
    prepared: Prepared | None = None
    grounding: Grounding | None = None
    safety: Safety | None = None
    cache: CacheInfo | None = Field(default=None, description="Semantic cache lookup (safety), when enabled.")
    completion: Completion | None = None
    response: Response | None = None
    chunk: Chunk | None = Field(default=None, description="Set on streamed pieces (kind 'chunk').")
    error: ErrorInfo | None = None
    trail: list[TrailRecord] = Field(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:  # noqa: ARG002 - pydantic's signature
        """Default the conversation to the request itself."""
        if not self.conversation_id:
            self.conversation_id = self.request_id

    @model_validator(mode="after")
    def _requests_have_a_request(self) -> Envelope:
        if self.kind == "request" and self.request is None:
            msg = "a request envelope needs the request section"
            raise ValueError(msg)
        if self.kind == "chunk" and self.chunk is None:
            msg = "a chunk envelope needs the chunk section"
            raise ValueError(msg)
        return self

    def require_request(self) -> Request:
        """The request section (always there for ``kind == "request"``)."""
        if self.request is None:
            msg = "the envelope has no request section"
            raise ValueError(msg)
        return self.request

    @property
    def last_user_text(self) -> str:
        """The content of the last user message of the request."""
        for msg in reversed(self.request.messages if self.request else []):
            if msg.role == "user":
                return msg.content
        return ""

    def to_bytes(self, *, drop_embedding: bool = False) -> bytes:
        """Serialize to JSON bytes, optionally without the (large) embedding."""
        env = self
        if drop_embedding and self.prepared is not None and self.prepared.embedding is not None:
            env = self.model_copy(update={"prepared": self.prepared.model_copy(update={"embedding": None})})
        return env.model_dump_json(exclude_none=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse JSON bytes; raises ``pydantic.ValidationError`` or ``ValueError``."""
        return cls.model_validate_json(raw)
