from services.postprocess.finisher import Finisher
from shared.messaging.envelope import ChatMessage, Completion, Envelope, Prepared, Request, Safety
from tests.conftest import make_envelope


def generated(text: str, user: str = "Capital of France?") -> Envelope:
    env = Envelope(
        conversation_id="c1", tenant="t1", request=Request(messages=[ChatMessage(role="user", content=user)])
    )
    env.prepared = Prepared(
        messages=[ChatMessage(role="user", content=user)], text=user, model="m", token_count=3, token_budget=9
    )
    env.completion = Completion(text=text, model="m", tokens_in=3, tokens_out=3)
    return env


class TestFinisher:
    def test_answer_is_polished_and_final(self) -> None:
        """The response is the cleaned completion; the envelope is final."""
        out = Finisher().process(generated("Paris.<|im_end|>"))
        assert out.response is not None
        assert out.response.text == "Paris."
        assert out.kind == "final"

    def test_blocked_request_gets_the_refusal(self) -> None:
        """A blocked request is answered with the policy's refusal and remembers nothing."""
        env = make_envelope()
        env.safety = Safety(verdict="block", category="pii.credit_card", refusal="No cards, please.")
        out = Finisher().process(env)
        assert out.response is not None
        assert (out.response.text, out.response.refused) == ("No cards, please.", True)
        assert Finisher.turn_of(out) is None

    def test_turn_uses_the_redacted_user_text(self) -> None:
        """Memory keeps what the model saw: the redacted prompt, never the raw PII."""
        env = generated("Hello!", user="I am bob@example.org")
        env.safety = Safety(verdict="redact", messages=[ChatMessage(role="user", content="I am <EMAIL>")])
        turn = Finisher.turn_of(Finisher().process(env))
        assert turn is not None
        assert (turn.conversation_id, turn.tenant, turn.user, turn.assistant) == ("c1", "t1", "I am <EMAIL>", "Hello!")
