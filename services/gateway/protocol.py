"""The OpenAI chat-completions wire format, and how pipeline answers map onto it (no HTTP, no Kafka).

Standard clients ignore unknown fields, so the pipeline's extras travel alongside OpenAI's:
requests may carry ``conversation_id``, ``template``, ``metadata`` and ``timeout``; answers
(and the last streamed chunk) carry an ``llmops`` object with the request and conversation
ids, the trail of stage timings, citations and safety findings.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.contracts.envelope import ChatMessage, Envelope, SamplingParams

__all__ = [
    "ApiError",
    "ChatCompletionRequest",
    "InputMessage",
    "answer_error",
    "chunk_body",
    "completion_body",
    "extras",
    "sse",
    "validation_error",
]

# Pipeline error codes (ErrorInfo.code) and the HTTP answer each gets.
_STATUS: dict[str, tuple[int, str]] = {
    "prompt_too_long": (400, "invalid_request_error"),
    "empty_prompt": (400, "invalid_request_error"),
    "unknown_template": (400, "invalid_request_error"),
    "invalid_message": (400, "invalid_request_error"),
    "unknown_model": (404, "invalid_request_error"),
    "deadline_exceeded": (504, "timeout_error"),
    "timeout": (504, "timeout_error"),
    "model_unavailable": (503, "server_error"),
    "quota_exceeded": (429, "rate_limit_error"),
}
_OPENAI_CODE = {"prompt_too_long": "context_length_exceeded", "unknown_model": "model_not_found"}


class ApiError(Exception):
    """An HTTP error answer in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": error | self.extra}


class _TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class InputMessage(BaseModel):
    """A chat message as clients send it: content as a string or a list of text parts."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_TextPart]

    def to_chat(self) -> ChatMessage:
        """The pipeline's message (``developer`` is a system message; parts are joined)."""
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return ChatMessage(role="system" if self.role == "developer" else self.role, content=text)


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``; fields OpenAI has and the pipeline cannot honour are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, description="Registry model; the default when absent.")
    messages: list[InputMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is produced.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # llmops extras
    conversation_id: str | None = Field(default=None, min_length=1, max_length=128)
    template: str | None = Field(default=None, min_length=1, max_length=128)
    metadata: dict[str, str] | None = None
    timeout: float | None = Field(default=None, gt=0)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:  # noqa: PLR2004 - OpenAI's limit
            msg = "at most 4 stop sequences"
            raise ValueError(msg)
        return value

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters to set (unset ones keep the pipeline's defaults)."""
        params: dict[str, Any] = {}
        max_tokens = self.max_completion_tokens or self.max_tokens
        if max_tokens is not None:
            params["max_tokens"] = max_tokens
        for name in ("temperature", "top_p", "seed"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.stop is not None:
            params["stop"] = [self.stop] if isinstance(self.stop, str) else self.stop
        SamplingParams(**params)  # fail here, as a 400, rather than later
        return params

    @classmethod
    def parse(cls, raw: bytes) -> ChatCompletionRequest:
        """Parse a request body; raises ``ApiError`` (400) when it is not a valid request."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise validation_error(exc) from None


def validation_error(exc: ValidationError) -> ApiError:
    """A 400 naming the first invalid parameter."""
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    param = ".".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int)) or None
    message = f"Invalid value for {param!r}: {first['msg']}" if param else f"Invalid request: {first['msg']}"
    return ApiError(400, message, param=param, code="invalid_value" if param else "invalid_json")


def answer_error(env: Envelope) -> ApiError | None:
    """The HTTP error for an error answer or a blocked request; ``None`` for a real answer."""
    if env.safety is not None and env.safety.verdict == "block":
        message = env.response.text if env.response else (env.safety.refusal or "blocked by the safety policy")
        return ApiError(
            422,
            message,
            type_="content_policy_violation",
            code="blocked_by_safety",
            category=env.safety.category,
            request_id=env.request_id,
        )
    if env.error is None:
        return None
    status, type_ = _STATUS.get(env.error.code, (500, "server_error"))
    retry_after = env.error.retry_after_s
    return ApiError(
        status,
        env.error.message,
        type_=type_,
        code=_OPENAI_CODE.get(env.error.code, env.error.code),
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None,
        stage=env.error.stage,
        request_id=env.request_id,
    )


def extras(env: Envelope) -> dict[str, Any]:
    """The pipeline's extras of an answer: ids, trail, citations, safety findings."""
    end_to_end = None
    if env.trail:
        last = env.trail[-1]
        end_to_end = round((last.started_at - env.created_at).total_seconds() * 1000 + last.duration_ms, 3)
    safety = env.safety
    response = env.response
    completion = env.completion
    return {
        "request_id": env.request_id,
        "conversation_id": env.conversation_id,
        "tenant": env.tenant,
        "template": env.grounding.template_id if env.grounding else None,
        "trail": [
            {"stage": t.stage, "replica": t.replica, "duration_ms": t.duration_ms, "outcome": t.outcome}
            for t in env.trail
        ],
        "end_to_end_ms": end_to_end,
        "time_to_first_token_ms": completion.time_to_first_token_ms if completion else None,
        "tokens_per_s": completion.tokens_per_s if completion else None,
        "citations": [c.model_dump() for c in response.citations] if response else [],
        "safety": {
            "verdict": safety.verdict if safety else None,
            "category": safety.category if safety else None,
            "findings": [f.model_dump(exclude={"message_index"}) for f in safety.findings] if safety else [],
        },
        "refused": response.refused if response else False,
        "truncated": response.truncated if response else False,
        "changes": response.changes if response else [],
    }


def _usage(env: Envelope) -> dict[str, int]:
    tokens_in = env.completion.tokens_in if env.completion else 0
    tokens_out = env.completion.tokens_out if env.completion else 0
    return {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}


def _finish_reason(env: Envelope) -> str:
    if env.completion is not None and env.completion.finish_reason in {"stop", "length"}:
        return env.completion.finish_reason
    return "stop"


def completion_body(env: Envelope, model: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` object for a final answer."""
    return {
        "id": f"chatcmpl-{env.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": env.completion.model if env.completion else model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": env.response.text if env.response else ""},
                "finish_reason": _finish_reason(env),
                "logprobs": None,
            }
        ],
        "usage": _usage(env),
        "llmops": extras(env),
    }


def chunk_body(
    request_id: str,
    model: str,
    created: int,
    delta: dict[str, str],
    *,
    final: Envelope | None = None,
    usage: bool = False,
) -> dict[str, Any]:
    """A ``chat.completion.chunk``; the one built from the final answer has the finish reason and the extras."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "delta": delta, "finish_reason": _finish_reason(final) if final else None, "logprobs": None}
        ],
    }
    if final is not None:
        body["llmops"] = extras(final)
        if usage:
            body["usage"] = _usage(final)
    return body


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()
