from pathlib import Path

import pytest
from pydantic import ValidationError

from services.safety.policy_file import SafetyPolicy


class TestSafetyPolicy:
    def test_packaged_policy(self) -> None:
        """Emails and phones are redacted, payment cards and secrets blocked, injections blocked."""
        policy = SafetyPolicy.load()
        assert policy.action_for("pii.email") == "redact"
        assert policy.action_for("pii.phone") == "redact"
        assert policy.action_for("pii.credit_card") == "block"
        assert policy.action_for("secrets.aws_secret_key") == "block"
        assert policy.action_for("injection.override") == "block"

    def test_per_tenant_actions(self) -> None:
        """block / redact / warn differ per tenant for the same finding."""
        policy = SafetyPolicy.load()
        assert [policy.action_for("pii.person", t) for t in ("default", "clinic")] == ["warn", "redact"]
        assert [policy.action_for("secrets.api_key", t) for t in ("default", "devtools")] == ["block", "redact"]
        assert [policy.action_for("injection.persona", t) for t in ("default", "devtools")] == ["block", "warn"]

    def test_file_from_settings(self, tmp_path: Path) -> None:
        """A policy file of one's own replaces the packaged one; errors surface at load."""
        path = tmp_path / "p.yaml"
        path.write_text("version: 3\ndefault:\n  checks:\n    pii: {action: warn}\n")
        policy = SafetyPolicy.load(path)
        assert (policy.version, policy.action_for("pii.email"), policy.action_for("pii.credit_card")) == (
            3,
            "warn",
            "warn",
        )
        path.write_text("default:\n  checks:\n    pii: {action: shred}\n")
        with pytest.raises(ValidationError):
            SafetyPolicy.load(path)

    def test_refusal_names_the_category(self) -> None:
        """The refusal tells the user what to remove."""
        assert "credit card" in SafetyPolicy.load().refusal_text("pii.credit_card")
