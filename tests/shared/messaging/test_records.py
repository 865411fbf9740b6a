import json

import pytest

from shared.messaging.records import MAX_JSON_DEPTH, load_json, salvage_routing


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
