import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shared.cache import CacheEntry
from shared.contracts.envelope import Envelope
from shared.contracts.errors import PoisonMessageError
from shared.contracts.turn import Turn
from shared.models.usage import UsageRecord
from shared.runtime.records import (
    MAX_JSON_DEPTH,
    TOPIC_NAME,
    ReceivedRecord,
    load_json,
    parse_envelope,
    salvage_routing,
)


class TestLoadJson:
    def test_depth_at_the_limit_is_read(self) -> None:
        """Nesting up to the limit parses as json.loads would."""
        raw = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
        assert load_json(raw) == json.loads(raw)

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
    def test_deeper_is_a_value_error(self, depth: int) -> None:
        """Deeper nesting is a ValueError (json.loads alone raises RecursionError at a few thousand)."""
        with pytest.raises(ValueError, match="nested deeper"):
            load_json(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")


class TestSalvageRouting:
    def test_deep_nesting_salvages_nothing(self) -> None:
        """A record too deep to read gives no routing, and raises nothing (issue 23: it raised RecursionError)."""
        raw = b'{"request_id": "r1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        assert salvage_routing(raw) == (None, None, "")

    def test_routing_is_read(self) -> None:
        """Request id, reply topic and conversation come back from a broken request."""
        raw = json.dumps({"request_id": "r1", "reply_to": "llmops.responses.acme", "conversation_id": "c"}).encode()
        assert salvage_routing(raw) == ("r1", "llmops.responses.acme", "c")


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
_KEYS = st.sampled_from(
    [
        "request_id",
        "reply_to",
        "conversation_id",
        "tenant",
        "kind",
        "request",
        "chunk",
        "error",
        "trail",
        "schema_version",
    ]
) | st.text(max_size=6)
_JSON = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=30
)
RECORD = ReceivedRecord(topic="llmops.grounded", partition=0, offset=3, key=b"k")


def _hostile(value: object) -> bytes:
    return json.dumps(value).encode()


class TestParsingProperties:
    """Property tests (issue 23) of the record parsing every later stage uses, and the side topics' records."""

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=2000) | _JSON.map(_hostile) | st.integers(0, 20_000).map(lambda d: b"[" * d + b"]" * d))
    def test_parse_envelope_is_an_envelope_or_poison(self, raw: bytes) -> None:
        """Any bytes, any JSON, any depth: an envelope or a PoisonMessageError, nothing else."""
        try:
            env = parse_envelope(raw, RECORD)
        except PoisonMessageError:
            return
        assert Envelope.from_bytes(env.to_bytes()) == env

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=2000) | _JSON.map(_hostile) | st.integers(0, 20_000).map(lambda d: b"{" + b'"a":{' * d))
    def test_salvage_never_raises(self, raw: bytes) -> None:
        """What salvage reads is always usable routing: a short id, a legal topic name, or nothing."""
        request_id, reply_to, conversation = salvage_routing(raw)
        assert request_id is None or 0 < len(request_id) <= 128
        assert reply_to is None or TOPIC_NAME.match(reply_to)
        assert len(conversation) <= 128

    @pytest.mark.parametrize("model", [UsageRecord, Turn, CacheEntry])
    @settings(max_examples=100, deadline=None)
    @given(raw=st.binary(max_size=1000) | _JSON.map(_hostile) | st.integers(0, 20_000).map(lambda d: b"[" * d))
    def test_side_topic_records(self, model: type[BaseModel], raw: bytes) -> None:
        """Usage, turn and cache records: parsed or a ValueError (a ValidationError), which the follower dead-letters."""
        with contextlib.suppress(ValueError):
            model.model_validate_json(raw)
