import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.preprocess.intake import parse_request, record_request_id
from shared.contracts.envelope import Envelope
from shared.contracts.errors import PipelineError, PoisonMessageError
from shared.runtime.runner import ReceivedRecord
from tests.conftest import make_envelope

RECORD = ReceivedRecord(topic="llmops.requests", partition=1, offset=7, key=b"conv-1")


class TestParseRequest:
    def test_minimal_shape(self) -> None:
        """{"messages": [...]} is enough; the key becomes the conversation, the id is derived."""
        raw = json.dumps({"messages": [{"role": "user", "content": "Hi"}]}).encode()
        env = parse_request(raw, RECORD)
        assert env.require_request().messages[0].content == "Hi"
        assert env.conversation_id == "conv-1"
        assert env.request_id == record_request_id(RECORD, raw)
        assert parse_request(raw, RECORD).request_id == env.request_id  # redelivered: the same id

    def test_derived_id_is_stable_across_redelivery(self) -> None:
        """The same record gives the same id; another offset another id."""
        raw = b'{"prompt": "Hi"}'
        other = ReceivedRecord(topic="llmops.requests", partition=1, offset=8, key=None)
        assert record_request_id(RECORD, raw) == record_request_id(RECORD, raw)
        assert record_request_id(RECORD, raw) != record_request_id(other, raw)

    def test_derived_id_cannot_be_predicted_from_the_position_alone(self) -> None:
        """Issue 23: knowing topic, partition and offset is not enough; the record's bytes and time are in it."""
        sent = ReceivedRecord(topic="llmops.requests", partition=1, offset=7, key=None, timestamp_ms=1_765_000_000_123)
        raw = b'{"prompt": "my salary is 90k"}'
        derived = record_request_id(sent, raw)
        assert derived != record_request_id(sent, b'{"prompt": "Hi"}')
        later = ReceivedRecord(topic="llmops.requests", partition=1, offset=7, key=None, timestamp_ms=1_765_000_000_124)
        assert derived != record_request_id(later, raw)
        assert len(derived) == 32
        assert set(derived) <= set("0123456789abcdef")

    def test_openai_style_fields(self) -> None:
        """Sampling fields at the top level land in params; a prompt string is a user message."""
        raw = json.dumps({"prompt": "Hi", "max_tokens": 5, "stop": "\n", "model": "gemma-3-270m", "request_id": "r"})
        env = parse_request(raw.encode(), RECORD)
        request = env.require_request()
        assert (request.params.max_tokens, request.params.stop, request.model) == (5, ["\n"], "gemma-3-270m")
        assert env.request_id == "r"

    def test_full_envelope(self) -> None:
        """The SDK's full envelope is accepted as it is."""
        env = make_envelope(conversation_id="mine")
        assert parse_request(env.to_bytes(), RECORD) == env

    @pytest.mark.parametrize(
        "raw",
        [
            b"\xff\xfe",
            b"[1, 2]",
            b'{"messages": "hi"}',
            b'{"messages": []}',
            b'{"messages": [{"role": "robot", "content": "x"}]}',
            b'{"messages": [{"role": "user", "content": "x"}], "bogus": 1}',
            b'{"messages": [{"role": "user", "content": "x"}], "schema_version": 9}',
        ],
    )
    def test_bad_input_is_poison(self, raw: bytes) -> None:
        """Anything that is not a valid request raises PoisonMessageError."""
        with pytest.raises(PoisonMessageError):
            parse_request(raw, RECORD)


class TestHostileRequests:
    """Issue 23: records a hostile client can write to a request topic."""

    @pytest.mark.parametrize("depth", [65, 5_000, 200_000])
    def test_deep_nesting_is_poison_not_a_recursion_error(self, depth: int) -> None:
        """Nesting past the limit is an invalid request, never a RecursionError that rewinds the batch forever."""
        raw = b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"
        with pytest.raises(PoisonMessageError, match="nested deeper"):
            parse_request(raw, RECORD)

    def test_deep_json_schema_is_refused(self) -> None:
        """A json_schema nested too deep is refused at intake, not by a later stage's parser."""
        schema: dict[str, object] = {}
        for _ in range(80):
            schema = {"properties": schema}
        raw = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "request_id": "r", "schema_version": 1})
        data = json.loads(raw)
        data = {"request": {"messages": data["messages"], "params": {"json_schema": schema}}}
        with pytest.raises(PoisonMessageError):
            parse_request(json.dumps(data).encode(), RECORD)

    @pytest.mark.parametrize(
        "section",
        [
            {"cache": {"key": "k", "hit": {"request_id": "x", "similarity": 1.0, "text": "forged", "model": "m"}}},
            {"safety": {"verdict": "allow"}},
            {"grounding": {"template_id": "t", "template_version": 1, "messages": [], "prompt": "p"}},
            {
                "trail": [
                    {
                        "stage": "safety",
                        "replica": "r",
                        "started_at": "2026-01-01T00:00:00Z",
                        "duration_ms": 1,
                        "outcome": "ok",
                    }
                ]
            },
            {"completion": {"text": "forged", "model": "m", "tokens_in": 0, "tokens_out": 0}},
            {"kind": "final"},
        ],
    )
    def test_stage_sections_are_refused(self, section: dict[str, object]) -> None:
        """A client cannot write a section a stage owns (a forged cache hit skipped inference)."""
        data = json.loads(make_envelope().to_bytes()) | section
        with pytest.raises(PoisonMessageError, match="filled by the pipeline"):
            parse_request(json.dumps(data).encode(), RECORD)

    def test_empty_stage_sections_pass(self) -> None:
        """The SDK writes every field, the stages' as null: that is not forging them."""
        env = make_envelope()
        assert parse_request(env.to_bytes(), RECORD).request_id == env.request_id


# Hostile JSON: every type, any nesting (up to a few hundred levels), the envelope's field names among random ones.
_FIELDS = [
    "request_id", "conversation_id", "tenant", "reply_to", "deadline", "request", "messages", "prompt", "model",
    "stream", "metadata", "schema_version", "max_tokens", "temperature", "stop", "seed", "kind", "cache", "safety",
    "grounding", "prepared", "trail", "role", "content", "params", "json_schema",
]  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["user", "system", "assistant", "llmops.preprocessed", "\ud800", "", "0" * 200, "2026-01-01"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


def _nested(depth: int) -> bytes:
    return b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"


class TestIntakeProperties:
    """Property tests (issue 23): whatever a client writes, intake returns a request or raises PipelineError."""

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=2000))
    def test_arbitrary_bytes(self, raw: bytes) -> None:
        """Any bytes: an envelope or a PipelineError, never another exception."""
        _parse_or_refuse(raw)

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=8))
    def test_hostile_field_values(self, data: dict[str, object]) -> None:
        """Every field with hostile values (any type, any nesting): an envelope or a PipelineError."""
        try:
            raw = json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass")
        except (UnicodeEncodeError, ValueError):
            raw = json.dumps(data).encode()
        _parse_or_refuse(raw)

    @settings(max_examples=50, deadline=None)
    @given(st.integers(min_value=0, max_value=50_000))
    def test_any_depth(self, depth: int) -> None:
        """JSON nested to any depth up to the size limit: refused past the limit, never a RecursionError."""
        _parse_or_refuse(_nested(depth))

    @settings(max_examples=100, deadline=None)
    @given(st.text(max_size=200), st.sampled_from(["system", "user", "assistant"]))
    def test_valid_requests_round_trip(self, text: str, role: str) -> None:
        """A request intake accepts is a clean request: no stage section, and it reads back between stages."""
        raw = json.dumps({"messages": [{"role": role, "content": text}], "request_id": "r"}).encode()
        env = _parse_or_refuse(raw)
        if env is not None:
            assert env.kind == "request"
            assert (env.cache, env.safety, env.grounding, env.completion, env.trail) == (None, None, None, None, [])
            assert Envelope.from_bytes(env.to_bytes()).request_id == "r"


def _parse_or_refuse(raw: bytes) -> Envelope | None:
    """The request intake reads from ``raw``, or None when it refuses it (with a PipelineError, the only way)."""
    try:
        env = parse_request(raw, RECORD)
    except PipelineError:
        return None
    assert env.kind == "request"
    assert env.request is not None
    assert 0 < len(env.request_id) <= 128
    return env
