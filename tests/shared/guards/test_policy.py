from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.guards.policy import GuardPolicy, PolicySet, describe


class TestGuardPolicy:
    def test_action_per_type_then_check(self) -> None:
        """A type's own action wins over its check's action."""
        policy = GuardPolicy.model_validate(
            {"checks": {"pii": {"action": "redact", "actions": {"CREDIT_CARD": "block"}}}}
        )
        assert policy.action_for("pii.email") == "redact"
        assert policy.action_for("pii.credit_card") == "block"
        assert policy.action_for("nosuch.thing") == "warn"

    def test_refusal_names_category_not_value(self) -> None:
        """The refusal describes the category in words."""
        policy = GuardPolicy()
        assert "credit card" in policy.refusal_text("pii.credit_card")
        assert "prompt injection" in policy.refusal_text("injection.override")
        assert describe("secrets.aws_secret_key") == "a secret or credential"

    def test_typos_fail(self) -> None:
        """Unknown keys and actions are rejected."""
        with pytest.raises(ValidationError):
            GuardPolicy.model_validate({"checks": {"pii": {"acton": "redact"}}})
        with pytest.raises(ValidationError):
            GuardPolicy.model_validate({"checks": {"pii": {"action": "explode"}}})


class TestPolicySet:
    def test_packaged_tenants(self) -> None:
        """The packaged file has a default and the clinic and devtools overrides."""
        policies = PolicySet.load()
        default, clinic, devtools = (policies.for_tenant(t) for t in ("default", "clinic", "devtools"))
        assert (default.action_for("pii.email"), default.action_for("pii.credit_card")) == ("redact", "block")
        assert default.action_for("pii.person") == "warn"
        assert clinic.action_for("pii.person") == "redact"
        assert clinic.action_for("pii.email") == "redact"  # inherited
        assert not clinic.restore_placeholders
        assert clinic.checks.banned_topics.enabled
        assert devtools.action_for("secrets.api_key") == "redact"
        assert devtools.action_for("injection.override") == "warn"
        assert not devtools.checks.profanity.enabled

    def test_unknown_tenant_gets_default(self) -> None:
        """A tenant without an entry is served by the default policy."""
        policies = PolicySet.load()
        assert policies.for_tenant("someone-new") == policies.for_tenant("default")

    def test_deep_merge_and_validation_at_load(self, tmp_path: Path) -> None:
        """Overrides name only what differs; a broken tenant fails at load."""
        path = tmp_path / "p.yaml"
        path.write_text(
            "version: 3\ndefault:\n  checks:\n    pii: {action: warn, min_score: 0.7}\n"
            "tenants:\n  a:\n    checks:\n      pii: {action: block}\n"
        )
        policies = PolicySet.load(path)
        assert policies.version == 3
        assert (policies.for_tenant("a").checks.pii.action, policies.for_tenant("a").checks.pii.min_score) == (
            "block",
            0.7,
        )
        path.write_text("default: {}\ntenants:\n  b:\n    checks:\n      pii: {action: nope}\n")
        with pytest.raises(ValidationError):
            PolicySet.load(path)


# Every decision of the retired services/postprocess/policy.yaml, under the unified names (issue 25).
_OLD_OUTPUT_ACTIONS = {
    "pii.email": "redact",
    "pii.phone": "redact",
    "pii.credit_card": "redact",
    "pii.person": "warn",  # not named there: its default_action
    "secrets.api_key": "redact",
    "secrets.aws_access_key": "redact",
    "secrets.aws_secret_key": "redact",
    "secrets.private_key": "redact",
    "secrets.credential": "redact",
    "secrets.password": "redact",
    "profanity.profanity": "redact",
    "leakage.system_prompt": "block",
    "leakage.poisoned_document": "block",
    "injection.override": "warn",
}


class TestOutputPolicy:
    @pytest.mark.parametrize(("finding", "action"), sorted(_OLD_OUTPUT_ACTIONS.items()))
    def test_packaged_output_actions_are_the_old_ones(self, finding: str, action: str) -> None:
        """The packaged ``output`` section acts on each finding as the retired postprocess policy did."""
        assert PolicySet.load().for_tenant("default").output.action_for(finding) == action

    def test_packaged_masks_refusal_and_leakage_settings(self) -> None:
        """Masks, refusal words and leakage thresholds carry over from the retired postprocess policy."""
        output = PolicySet.load().for_tenant("default").output
        assert [output.mask_for(f) for f in ("pii.email", "secrets.api_key", "profanity.profanity")] == [
            "<EMAIL>",
            "<API_KEY>",
            "****",
        ]
        assert output.mask_for("leakage.system_prompt") == output.mask_for("leakage.poisoned_document") == ""
        assert output.refusal_text("leakage.system_prompt") == (
            "I can't share that answer because it contained parts of my instructions."
        )
        assert (output.checks.leakage.threshold, output.checks.leakage.min_words) == (80, 8)

    def test_python_defaults_match_the_packaged_file(self) -> None:
        """A policy file without an ``output`` section gets the packaged output behaviour."""
        assert GuardPolicy().output == PolicySet.load().for_tenant("default").output

    def test_tenant_output_override_is_deep_merged(self, tmp_path: Path) -> None:
        """A tenant's ``output`` override names only what differs and applies to that tenant only."""
        path = tmp_path / "p.yaml"
        path.write_text(
            "default:\n  output:\n    checks:\n      secrets: {action: redact, mask: '[key]'}\n"
            "tenants:\n  a:\n    output:\n      checks:\n        secrets: {actions: {API_KEY: block}}\n"
        )
        policies = PolicySet.load(path)
        a, other = policies.for_tenant("a").output, policies.for_tenant("b").output
        assert (a.action_for("secrets.api_key"), a.action_for("secrets.password")) == ("block", "redact")
        assert a.mask_for("secrets.password") == "[key]"  # inherited
        assert other.action_for("secrets.api_key") == "redact"

    def test_output_typos_fail(self) -> None:
        """Unknown output checks and keys are rejected like input ones."""
        with pytest.raises(ValidationError):
            GuardPolicy.model_validate({"output": {"checks": {"offensive": {"action": "redact"}}}})
        with pytest.raises(ValidationError):
            GuardPolicy.model_validate({"output": {"actions": {"pii.email": "redact"}}})
