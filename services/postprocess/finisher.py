"""The postprocess stage's work: the final answer (or the refusal), and the turn for memory."""

from __future__ import annotations

from services.postprocess.polish import polish_answer
from shared.messaging.envelope import Envelope, Response, Turn
from shared.messaging.errors import PipelineError

__all__ = ["Finisher"]


class Finisher:
    """Turns a generated (or blocked) envelope into the final answer.

    Example:
        >>> Finisher().process(envelope).response.text
        'The capital of France is Paris.'

    """

    def process(self, env: Envelope) -> Envelope:
        """Fill ``response`` and mark the envelope final."""
        safety = env.safety
        if safety is not None and safety.verdict == "block":
            refusal = safety.refusal or "I can't help with this request."
            response = Response(text=refusal, refused=True)
        elif env.completion is None:
            raise PipelineError("invalid_message", "postprocess needs a completion or a blocked verdict")
        else:
            text, changes = polish_answer(env.completion.text)
            response = Response(text=text, changes=changes)
        return env.model_copy(update={"response": response, "kind": "final"})

    @staticmethod
    def turn_of(env: Envelope) -> Turn | None:
        """The turn to remember, for answered (not refused) requests; the user text as the model saw it."""
        if env.response is None or env.response.refused or env.prepared is None:
            return None
        user = env.prepared.text
        if env.safety is not None and env.safety.messages:
            user = next((m.content for m in reversed(env.safety.messages) if m.role == "user"), user)
        return Turn(
            request_id=env.request_id,
            conversation_id=env.conversation_id,
            tenant=env.tenant,
            user=user,
            assistant=env.response.text,
        )
