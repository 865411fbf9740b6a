import json

import pytest

from services.preprocess.intake import parse_request, record_request_id
from shared.messaging.errors import PoisonMessageError
from shared.messaging.stage import ReceivedRecord
from tests.conftest import make_envelope

RECORD = ReceivedRecord(topic="llmops.requests", partition=1, offset=7, key=b"conv-1")


class TestParseRequest:
    def test_minimal_shape(self) -> None:
        """{"messages": [...]} is enough; the key becomes the conversation, the id is derived."""
        raw = json.dumps({"messages": [{"role": "user", "content": "Hi"}]}).encode()
        env = parse_request(raw, RECORD)
        assert env.require_request().messages[0].content == "Hi"
        assert env.conversation_id == "conv-1"
        assert env.request_id == record_request_id(RECORD)

    def test_derived_id_is_stable_across_redelivery(self) -> None:
        """The same record gives the same id; another offset another id."""
        other = ReceivedRecord(topic="llmops.requests", partition=1, offset=8, key=None)
        assert record_request_id(RECORD) == record_request_id(RECORD)
        assert record_request_id(RECORD) != record_request_id(other)

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
