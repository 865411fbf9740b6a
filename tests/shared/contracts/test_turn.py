"""The turns topic's record: unchanged on the wire, and its retraction."""

import json

from shared.contracts.turn import Turn


class TestTurnRetraction:
    def test_a_turn_reads_as_it_always_did_and_a_retraction_says_so(self) -> None:
        """``retracted`` is written only on a retraction: readers that forbid unknown fields still read turns."""
        turn = Turn(request_id="r", conversation_id="c", tenant="t", user="u", assistant="a")
        assert "retracted" not in json.loads(turn.model_dump_json())
        back = Turn.model_validate_json(turn.retraction().model_dump_json())
        assert back.retracted
        assert back.model_copy(update={"retracted": False}) == turn
