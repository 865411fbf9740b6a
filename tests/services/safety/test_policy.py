from pathlib import Path

from services.safety.policy import SafetyPolicy


class TestSafetyPolicy:
    def test_packaged_policy(self) -> None:
        """Emails and phones are redacted, payment cards blocked."""
        policy = SafetyPolicy.load()
        assert policy.action_for("pii.email") == "redact"
        assert policy.action_for("pii.phone") == "redact"
        assert policy.action_for("pii.credit_card") == "block"

    def test_default_action_for_unnamed_checks(self, tmp_path: Path) -> None:
        """Checks the policy does not name get its default action."""
        path = tmp_path / "p.yaml"
        path.write_text("version: 3\nactions: {}\ndefault_action: warn\n")
        policy = SafetyPolicy.load(path)
        assert (policy.version, policy.action_for("pii.email")) == (3, "warn")

    def test_refusal_names_the_category(self) -> None:
        """The refusal tells the user what to remove."""
        assert "credit card" in SafetyPolicy.load().refusal_text("pii.credit_card")
