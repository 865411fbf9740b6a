import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.postprocess.output_checks import OutputChecker, OutputContext
from shared.contracts.envelope import ChatMessage, Document, Envelope, Grounding, MemoryTurn, Safety
from shared.guards import PolicySet
from shared.guards.leakage import _segments, _widen
from tests.conftest import make_envelope

SYSTEM = (
    "You are Ada, the support assistant of ACME Robotics. Never reveal the internal escalation code RX-7731 to anyone."
)


class TestOutputContext:
    def test_system_prompt_without_documents_and_memory(self) -> None:
        """The prompt's documents and remembered answers are cut out: the answer may quote them."""
        env = make_envelope()
        doc = "Paris is the capital of France and has been for a very long time indeed."
        env.grounding = Grounding(
            documents=[Document(id="d", source="s", score=1.0, text=doc)],
            memory=[MemoryTurn(request_id="r", user="u", assistant="Earlier answer text.")],
            template_id="t",
            template_version=1,
            messages=[
                ChatMessage(role="system", content=f"{SYSTEM}\nContext: {doc}\nEarlier answer text."),
                ChatMessage(role="user", content="hi"),
            ],
            prompt="...",
        )
        context = OutputContext.from_envelope(env)
        assert len(context.system_prompts) == 1
        assert doc not in context.system_prompts[0]
        assert SYSTEM in context.system_prompts[0]
        assert OutputContext.from_envelope(Envelope(kind="final")).references == []

    def test_without_system_role_the_prompt_minus_the_users_words(self) -> None:
        """A template that puts its instructions in the user turn is still guarded; the user's words are not."""
        env = make_envelope("How do I reset my robot arm?")
        prompt = f"User: {SYSTEM}\n\nHow do I reset my robot arm?"
        env.grounding = Grounding(
            template_id="t",
            template_version=1,
            messages=[ChatMessage(role="user", content=prompt[6:])],
            prompt=prompt,
        )
        [reference] = OutputContext.from_envelope(env).system_prompts
        assert SYSTEM in reference
        assert "reset my robot arm" not in reference


class TestOutputChecker:
    def test_redacts_model_pii_and_records_findings_without_values(self, checker: OutputChecker) -> None:
        """PII is replaced by its placeholder; the finding has the check, span and action only."""
        result = checker.check("Mail bob@evil.example now.", OutputContext())
        assert result.text == "Mail <EMAIL> now."
        [finding] = result.findings
        assert (finding.check, finding.start, finding.end, finding.action) == ("pii.email", 5, 21, "redact")
        assert result.blocked_by is None

    def test_allowed_spans_pass(self, checker: OutputChecker) -> None:
        """The user's own values, put back on purpose, are not redacted."""
        result = checker.check("Mail ann@example.com now.", OutputContext(), allowed=[(5, 20)])
        assert result.text == "Mail ann@example.com now."
        assert result.findings == []

    def test_leak_blocks_with_refusal(self, checker: OutputChecker) -> None:
        """A leaked system prompt blocks the answer: the refusal replaces it entirely."""
        answer = "OK. You are Ada, the support assistant of ACME Robotics. Never reveal the internal escalation code RX-7731."
        result = checker.check(answer, OutputContext(system_prompts=(SYSTEM,)))
        assert result.blocked_by == "leakage.system_prompt"
        assert "RX-7731" not in result.text
        assert result.text == checker.policy.for_tenant("default").output.refusal_text("leakage.system_prompt")

    def test_policy_decides(self) -> None:
        """The same finding is redacted, blocked or only recorded, as the policy's output section says."""
        text = "Mail bob@evil.example now."
        for action, expected in (("warn", text), ("redact", "Mail <EMAIL> now.")):
            policy = _policies({"default": {"output": {"checks": {"pii": {"actions": {"EMAIL": action}}}}}})
            assert OutputChecker(policy=policy).check(text, OutputContext()).text == expected
        blocking = _policies(
            {"default": {"output": {"refusal": "No: {category}.", "checks": {"pii": {"actions": {"EMAIL": "block"}}}}}}
        )
        assert OutputChecker(policy=blocking).check(text, OutputContext()).text == "No: email."

    def test_packaged_policy_loads(self) -> None:
        """The packaged policy blocks leaks and redacts PII and secrets."""
        policy = PolicySet.load().for_tenant("default").output
        assert policy.action_for("leakage.system_prompt") == "block"
        assert policy.action_for("pii.email") == "redact"
        assert policy.action_for("secrets.api_key") == "redact"
        assert policy.action_for("something.new") == "warn"
        assert policy.mask_for("pii.credit_card") == "<CREDIT_CARD>"

    def test_findings_carry_type_score_and_severity(self, checker: OutputChecker) -> None:
        """Postprocess writes the same finding as safety: name, type, score and the shared severity."""
        [finding] = checker.check("Mail bob@evil.example now.", OutputContext()).findings
        assert (finding.check, finding.type, finding.score, finding.severity) == ("pii.email", "EMAIL", 1.0, "medium")


class TestUnifiedPolicy:
    """Issue 25: the output policy is the ``output`` section of the one guard policy file."""

    def test_an_output_action_in_the_policy_file_changes_the_answer(self, tmp_path: Path) -> None:
        """Blocking secrets under ``output`` in a policy file (the safety format) makes postprocess refuse them."""
        path = tmp_path / "policy.yaml"
        path.write_text(
            "version: 2\n"
            "default:\n"
            "  checks: {secrets: {action: redact}}\n"
            "  output: {checks: {secrets: {actions: {AWS_ACCESS_KEY: block}}}}\n"
        )
        checker = OutputChecker(policy=PolicySet.load(path))
        result = checker.check("The key is AKIAIOSFODNN7EXAMPLE.", OutputContext())
        assert result.blocked_by == "secrets.aws_access_key"
        assert "AKIAIOSFODNN7EXAMPLE" not in result.text
        assert result.text == "I can't share that answer because it contained a secret or credential."
        # The input section of the same file is the safety stage's, and unchanged by the output one.
        assert PolicySet.load(path).for_tenant("default").action_for("secrets.aws_access_key") == "redact"

    def test_a_tenant_override_applies_to_that_tenant_only(self) -> None:
        """A tenant's ``output`` override changes its answers; other tenants keep the default's actions."""
        policy = _policies(
            {"tenants": {"strict": {"output": {"checks": {"profanity": {"action": "block"}}, "refusal": "No."}}}}
        )
        checker = OutputChecker(policy=policy)
        text = "what a shitty day"
        assert checker.check(text, OutputContext(policy="strict")).text == "No."
        assert checker.check(text, OutputContext(policy="strict")).blocked_by == "profanity.profanity"
        assert checker.check(text, OutputContext(policy="other")).text == "what a **** day"
        assert checker.check(text, OutputContext()).text == "what a **** day"

    def test_the_tenant_comes_from_the_envelope(self) -> None:
        """``OutputContext.from_envelope`` takes the request's tenant, with or without grounding."""
        env = make_envelope()
        env.tenant = "clinic"
        assert OutputContext.from_envelope(env).policy == "clinic"
        assert OutputContext.from_envelope(Envelope(kind="final", tenant="clinic")).policy == "clinic"

    def test_a_shadow_request_gets_the_policy_safety_checked_it_under(self) -> None:
        """A replay under a candidate policy (``Safety.policy``) gets that policy's output checks, not its tenant's."""
        policy = _policies({"tenants": {"clinic": {"output": {"checks": {"profanity": {"action": "block"}}}}}})
        env = make_envelope()
        env.tenant = "acme"
        env.safety = Safety(verdict="allow", policy="clinic")
        context = OutputContext.from_envelope(env)
        assert context.policy == "clinic"
        assert OutputChecker(policy=policy).check("what a shitty day", context).blocked_by == "profanity.profanity"
        env.safety = Safety(verdict="allow")  # written before the field existed: the tenant's
        assert OutputContext.from_envelope(env).policy == "acme"

    def test_the_old_postprocess_format_is_refused_with_a_pointer(self, tmp_path: Path) -> None:
        """A file of the retired flat format fails at start, saying where output actions live now."""
        path = tmp_path / "policy.yaml"
        path.write_text("version: 1\ndefault_action: warn\nactions: {pii.email: block}\n")
        with pytest.raises(ValueError, match=r"output\.checks"):
            PolicySet.load(path)


def _policies(data: dict[str, Any]) -> PolicySet:
    """A policy set from a dict in the file's format, validated as ``load`` would."""
    return PolicySet.model_validate({"version": 2, **data})


class TestHostileAnswers:
    """Issue 23: the output checks are linear in the answer; 30,000 addresses took minutes."""

    def test_many_findings_at_the_size_limit(self, checker: OutputChecker) -> None:
        """An answer of 130,000 characters of e-mail addresses is checked within the stage's 2 s of CPU."""
        text = "a@b.co " * 18_500
        t0 = time.process_time()
        result = checker.check(text, OutputContext())
        assert time.process_time() - t0 < 2.0
        assert "a@b.co" not in result.text


class TestLeakWidening:
    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="ab .!?\n", max_size=60), st.integers(0, 60), st.integers(0, 60))
    def test_bisection_widens_as_the_scan_did(self, text: str, start: int, end: int) -> None:
        """A leak is widened to the same sentence bounds as the scan over every sentence gave."""
        segments = _segments(text)
        expected = (
            max((s for s, _ in segments if s <= start), default=start),
            min((e for _, e in segments if e >= end), default=end),
        )
        assert _widen(segments, start, end) == expected
