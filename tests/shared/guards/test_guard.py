import pytest

from shared.guards import TextGuard


@pytest.fixture(scope="module")
def guard() -> TextGuard:
    g = TextGuard()
    g.warm_up()
    return g


class TestTextGuard:
    def test_clean_text_passes(self, guard: TextGuard) -> None:
        """A harmless question has no findings and is unchanged."""
        result = guard.scan("What is the capital of France?")
        assert result.clean
        assert result.redacted == "What is the capital of France?"

    def test_findings_come_from_the_guardrails_run(self, guard: TextGuard) -> None:
        """Spans are read from guardrails' validation summaries and the fix value is the redaction."""
        text = "Contact me at jane@corp.example or 415-555-0132."
        result = guard.scan(text)
        assert [(s.check, text[s.start : s.end]) for s in result.spans] == [
            ("pii.email", "jane@corp.example"),
            ("pii.phone", "415-555-0132"),
        ]
        assert result.redacted == "Contact me at <EMAIL> or <PHONE>."

    def test_only_configured_kinds(self) -> None:
        """A guard built for emails ignores phone numbers."""
        guard = TextGuard(kinds=["email"])
        guard.warm_up()
        assert guard.scan("call 415-555-0132").clean

    def test_redact_only_chosen_checks(self, guard: TextGuard) -> None:
        """Selective redaction replaces only the named checks' spans."""
        result = guard.scan("Contact me at jane@corp.example or 415-555-0132.")
        assert result.redact_only({"pii.email"}) == "Contact me at <EMAIL> or 415-555-0132."
        assert result.redact_only(set()) == result.text
