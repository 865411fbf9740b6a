from shared.contracts.envelope import Envelope
from shared.contracts.stage import Output, each
from shared.contracts.topology import Role
from shared.contracts.turn import Turn
from tests.conftest import make_envelope


class TestOutput:
    def test_an_envelope_is_keyed_by_its_conversation(self) -> None:
        """``Output.of`` keys by conversation id and carries the request id."""
        env = make_envelope(conversation_id="c-1")
        output = Output.of(Role.GROUNDED, env)
        assert (output.key, output.request_id, output.envelope) == ("c-1", env.request_id, env)

    def test_a_side_record_has_its_own_key_and_no_envelope(self) -> None:
        """A turn is not an envelope: its key is the one given."""
        turn = Turn(request_id="r", conversation_id="c", tenant="default", user="hi", assistant="hello")
        output = Output.record(Role.TURNS, turn, key="c", request_id="r")
        assert (output.key, output.envelope) == ("c", None)


class TestEach:
    def test_one_failing_item_does_not_fail_the_batch(self) -> None:
        """Each item is handled on its own: a failure becomes that item's result, the rest go on."""

        def step(env: Envelope) -> Envelope:
            if env.last_user_text == "boom":
                raise ValueError("broken")
            return env

        ok, failed, also_ok = each(step, [make_envelope("a"), make_envelope("boom"), make_envelope("b")])
        assert isinstance(ok, Envelope)
        assert isinstance(failed, ValueError)
        assert isinstance(also_ok, Envelope)

    def test_an_earlier_failure_is_passed_on(self) -> None:
        """An item that already failed is not given to the step again."""
        error = ValueError("earlier")
        assert each(lambda env: env, [error]) == [error]
