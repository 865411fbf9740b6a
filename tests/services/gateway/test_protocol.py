from datetime import UTC, datetime, timedelta

import pytest

from services.gateway.protocol import (
    ApiError,
    ChatCompletionRequest,
    answer_error,
    chunk_body,
    completion_body,
    extras,
)
from shared.contracts.envelope import (
    Citation,
    Completion,
    Envelope,
    ErrorInfo,
    Finding,
    Response,
    Safety,
    TrailRecord,
)
from tests.conftest import make_envelope


def _answer() -> Envelope:
    env = make_envelope()
    start = env.created_at
    return env.model_copy(
        update={
            "kind": "final",
            "completion": Completion(text="Paris.", model="m", tokens_in=12, tokens_out=3, finish_reason="stop"),
            "response": Response(
                text="Paris.", citations=[Citation(number=1, document_id="d1", source="atlas.md", title="Atlas")]
            ),
            "safety": Safety(verdict="redact", findings=[Finding(check="pii.email", start=0, end=5, action="redact")]),
            "trail": [
                TrailRecord(stage="preprocess", replica="p-0", started_at=start, duration_ms=1.5, outcome="ok"),
                TrailRecord(
                    stage="inference",
                    replica="i-0",
                    started_at=start + timedelta(milliseconds=10),
                    duration_ms=40.0,
                    outcome="ok",
                ),
            ],
        }
    )


class TestChatCompletionRequest:
    def test_sampling_takes_only_what_was_set(self) -> None:
        """Unset parameters keep the pipeline's defaults; a single stop string becomes a list."""
        body = ChatCompletionRequest.parse(
            b'{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5,"stop":"\\n","logprobs":true}'
        )
        assert body.sampling() == {"max_tokens": 5, "stop": ["\n"]}

    def test_text_parts_and_developer_role(self) -> None:
        """Content given as text parts is joined; the developer role is a system message."""
        body = ChatCompletionRequest.parse(
            b'{"messages":[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}'
        )
        message = body.messages[0].to_chat()
        assert (message.role, message.content) == ("system", "ab")

    @pytest.mark.parametrize(
        ("raw", "param"),
        [
            (b'{"messages":[{"role":"user","content":"hi"}],"temperature":3}', "temperature"),
            (b'{"messages":[]}', "messages"),
            (b'{"messages":[{"role":"tool","content":"x"}]}', "messages.role"),
            (b'{"messages":[{"role":"user","content":"hi"}],"n":2}', "n"),
            (b"not json", None),
        ],
    )
    def test_invalid_requests_are_400_naming_the_parameter(self, raw: bytes, param: str | None) -> None:
        """An invalid body is a 400 invalid_request_error with the parameter named."""
        with pytest.raises(ApiError) as info:
            ChatCompletionRequest.parse(raw)
        assert info.value.status == 400
        assert info.value.param == param
        assert set(info.value.body()["error"]) == {"message", "type", "param", "code"}


class TestAnswers:
    def test_completion_body_is_openai_shaped_with_extras(self) -> None:
        """The answer has OpenAI's fields, usage from the completion, and the trail, citations and findings."""
        body = completion_body(_answer(), "m", 1)
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "Paris."}
        assert body["choices"][0]["finish_reason"] == "stop"
        assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
        llmops = body["llmops"]
        assert [t["stage"] for t in llmops["trail"]] == ["preprocess", "inference"]
        assert llmops["end_to_end_ms"] == pytest.approx(50.0)
        assert llmops["citations"][0]["source"] == "atlas.md"
        assert llmops["safety"]["findings"][0]["check"] == "pii.email"

    def test_only_the_last_chunk_has_finish_reason_and_extras(self) -> None:
        """Content chunks have no finish reason; the closing one has it, the extras and (if asked) usage."""
        answer = _answer()
        piece = chunk_body("r", "m", 1, {"content": "Par"})
        assert piece["choices"][0]["finish_reason"] is None
        assert "llmops" not in piece
        last = chunk_body("r", "m", 1, {}, final=answer, usage=True)
        assert last["choices"][0]["finish_reason"] == "stop"
        assert last["usage"]["completion_tokens"] == 3
        assert last["llmops"] == extras(answer)

    def test_blocked_answers_are_422_with_the_category(self) -> None:
        """A refusal by the safety stage is a 422 content_policy_violation naming the category."""
        env = make_envelope().model_copy(
            update={
                "kind": "final",
                "safety": Safety(verdict="block", category="a payment card number", refusal="No."),
                "response": Response(text="No.", refused=True),
            }
        )
        error = answer_error(env)
        assert error is not None
        assert error.status == 422
        assert error.body()["error"]["category"] == "a payment card number"
        assert error.body()["error"]["code"] == "blocked_by_safety"

    @pytest.mark.parametrize(
        ("code", "status", "openai_code"),
        [
            ("prompt_too_long", 400, "context_length_exceeded"),
            ("deadline_exceeded", 504, "deadline_exceeded"),
            ("model_unavailable", 503, "model_unavailable"),
            ("unknown_model", 404, "model_not_found"),
            ("internal_error", 500, "internal_error"),
        ],
    )
    def test_pipeline_errors_map_to_status_codes(self, code: str, status: int, openai_code: str) -> None:
        """Each pipeline error code gets its HTTP status and an OpenAI error code."""
        env = make_envelope(deadline=datetime.now(UTC)).model_copy(
            update={"kind": "final", "error": ErrorInfo(code=code, message="m", stage="s")}
        )
        error = answer_error(env)
        assert error is not None
        assert (error.status, error.code) == (status, openai_code)
        assert error.body()["error"]["stage"] == "s"

    def test_quota_exceeded_is_429_with_retry_after(self) -> None:
        """A tenant over its quota gets 429 and Retry-After from the error's retry_after_s."""
        env = make_envelope().model_copy(
            update={
                "kind": "final",
                "error": ErrorInfo(code="quota_exceeded", message="m", stage="preprocess", retry_after_s=12.5),
            }
        )
        error = answer_error(env)
        assert error is not None
        assert (error.status, error.type, error.code) == (429, "rate_limit_error", "quota_exceeded")
        assert error.headers == {"Retry-After": "13"}

    def test_a_real_answer_is_no_error(self) -> None:
        """An answer without error or block maps to no error."""
        assert answer_error(_answer()) is None
