from services.gateway.completions import remaining_text
from shared.contracts.envelope import Envelope, Response
from tests.conftest import make_envelope


def _final(text: str) -> Envelope:
    return make_envelope().model_copy(update={"kind": "final", "response": Response(text=text)})


class TestRemainingText:
    def test_nothing_streamed_gives_the_whole_answer(self) -> None:
        """With no chunks sent, the final answer's text is all that is left."""
        assert remaining_text(_final("Paris."), "") == "Paris."

    def test_a_streamed_prefix_leaves_the_rest(self) -> None:
        """The final text continues the streamed one: only the continuation is sent."""
        assert remaining_text(_final("Paris is the capital."), "Paris is") == " the capital."

    def test_polished_text_that_no_longer_extends_the_stream_adds_nothing(self) -> None:
        """When postprocess changed what was streamed, the stream already said it."""
        assert remaining_text(_final("Paris."), "Paris!!") == ""
