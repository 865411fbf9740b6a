import pytest

from services.safety.checker import SafetyChecker
from services.safety.policy import SafetyPolicy
from shared.components.guards import TextGuard
from shared.messaging.envelope import ChatMessage, Envelope, Grounding, Request
from shared.messaging.errors import PipelineError


@pytest.fixture(scope="module")
def checker() -> SafetyChecker:
    c = SafetyChecker(TextGuard(), SafetyPolicy.load())
    c.warm_up()
    return c


def grounded(user: str, system: str = "Be helpful. Support: help@llmops.example") -> Envelope:
    messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
    env = Envelope(request=Request(messages=[messages[1]]))
    env.grounding = Grounding(template_id="default", template_version=1, messages=messages, prompt="p")
    return env


class TestSafetyChecker:
    def test_clean_prompt_is_allowed(self, checker: SafetyChecker) -> None:
        """No findings, verdict allow, no redacted copy."""
        safety = checker.process(grounded("What is the capital of France?")).safety
        assert safety is not None
        assert (safety.verdict, safety.findings, safety.messages) == ("allow", [], None)

    def test_email_is_redacted_in_the_prompt(self, checker: SafetyChecker) -> None:
        """User PII is replaced in the safety section's prompt; the system text is not scanned."""
        env = grounded("I am bob@example.org, greet me.")
        safety = checker.process(env).safety
        assert safety is not None
        assert safety.verdict == "redact"
        assert [(f.check, f.action, f.message_index) for f in safety.findings] == [("pii.email", "redact", 1)]
        assert safety.messages is not None
        assert safety.messages[1].content == "I am <EMAIL>, greet me."
        assert "help@llmops.example" in safety.messages[0].content
        assert safety.prompt is not None
        assert "<EMAIL>" in safety.prompt
        assert env.grounding is not None
        assert env.grounding.messages[1].content == "I am bob@example.org, greet me."

    def test_card_number_blocks_with_refusal(self, checker: SafetyChecker) -> None:
        """A payment card blocks the request, with the category and the refusal text."""
        safety = checker.process(grounded("card 4111 1111 1111 1111, mail x@y.org")).safety
        assert safety is not None
        assert safety.verdict == "block"
        assert safety.category == "pii.credit_card"
        assert safety.refusal is not None
        assert "credit card" in safety.refusal

    def test_needs_grounding(self, checker: SafetyChecker) -> None:
        """An envelope that skipped grounding is an error."""
        with pytest.raises(PipelineError):
            checker.process(Envelope(request=Request(messages=[ChatMessage(role="user", content="x")])))
