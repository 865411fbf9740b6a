"""Output checks on an answer: the shared ``OutputScanner`` under the tenant's output policy.

The checks themselves (validators run directly, leakage, masks) live in
``shared.guards.output_scan``; the policy is the ``output`` section of the one guard
policy file (``shared/guards/policy.yaml``, or ``LLMOPS_POSTPROCESS_POLICY_PATH``),
per tenant like the safety stage's. This module adds what the envelope gives: what the answer
must not repeat (``OutputContext``) and the findings and refusal postprocess writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.contracts.envelope import Envelope, Finding
from shared.guards.output_scan import OutputGuard, OutputScanner
from shared.guards.policy import PolicySet

__all__ = ["CheckResult", "OutputChecker", "OutputContext"]

_MIN_CUT_CHARS = 20


def _cut_out(text: str, parts: Sequence[str]) -> str:
    for part in parts:
        text = text.replace(part, "\n")
    return text


@dataclass(frozen=True)
class OutputContext:
    """Whose policy applies, and what the answer must not repeat: the system prompt and dropped documents.

    ``policy`` is the named policy safety checked the request under (``Safety.policy``: the tenant's, or a shadow
    request's ``policy`` metadata), so a replay under a candidate policy gets that policy's output checks too.
    """

    system_prompts: tuple[str, ...] = ()
    poisoned: tuple[str, ...] = ()
    policy: str = "default"

    @classmethod
    def from_envelope(cls, env: Envelope) -> OutputContext:
        """The policy, and the prompt's instructions with the retrieved documents, memory and the user's words cut out.

        The system messages when the template has them; otherwise (models without a system
        role get the instructions inside a user turn) the whole plain-text prompt. Documents
        the safety stage dropped as poisoned (``safety.dropped_documents``, ids of grounding's
        documents) must not be echoed; the prompt's other documents may be quoted freely.
        """
        policy = (env.safety.policy if env.safety is not None else None) or env.tenant
        grounding = env.grounding
        if grounding is None:
            return cls(policy=policy)
        dropped_ids = set(env.safety.dropped_documents) if env.safety is not None else set()
        allowed = [d.text for d in grounding.documents if d.id not in dropped_ids]
        allowed += [text for turn in grounding.memory for text in (turn.user, turn.assistant)]
        messages = env.prepared.messages if env.prepared else env.request.messages if env.request else []
        allowed += [m.content for m in messages if m.role != "system"]
        system = [m.content for m in grounding.messages if m.role == "system"]
        # Short texts are left in: they cannot make a leak (see find_leaks' min_words), and cutting
        # "ok" out of the prompt would cut it out of every word.
        cut = sorted((t for t in allowed if len(t) >= _MIN_CUT_CHARS), key=len, reverse=True)
        prompts = tuple(_cut_out(prompt, cut) for prompt in system or [grounding.prompt])
        return cls(prompts, tuple(d.text for d in grounding.documents if d.id in dropped_ids), policy)

    @property
    def references(self) -> list[tuple[str, str]]:
        """(kind, text) pairs for ``find_leaks``."""
        return [("system_prompt", t) for t in self.system_prompts] + [("poisoned_document", t) for t in self.poisoned]


@dataclass
class CheckResult:
    """The answer after the policy's actions, the findings (no values), and the blocking check if any."""

    text: str
    findings: list[Finding] = field(default_factory=list)
    blocked_by: str | None = None


class OutputChecker:
    """Runs the output checks over an answer and applies the tenant's output policy.

    Example:
        >>> checker = OutputChecker(policy=PolicySet.load())
        >>> checker.warm_up()
        >>> checker.check("Write to ann@corp.example.", OutputContext()).text
        'Write to <EMAIL>.'

    """

    def __init__(self, guards: Sequence[OutputGuard] | None = None, policy: PolicySet | None = None) -> None:
        self.scanner = OutputScanner(guards)
        self.policy = policy or PolicySet.load()

    @property
    def guards(self) -> list[OutputGuard]:
        """The guards the scanner runs."""
        return self.scanner.guards

    def warm_up(self) -> None:
        """Build the guards."""
        self.scanner.warm_up()

    def check(self, text: str, context: OutputContext, *, allowed: Sequence[tuple[int, int]] = ()) -> CheckResult:
        """Scan ``text`` and apply the policy; spans inside ``allowed`` (the user's own values put back) pass."""
        policy = self.policy.for_tenant(context.policy).output
        result = self.scanner.scan(text, policy, references=context.references, allowed=allowed)
        findings = [f.to_finding() for f in result.findings]
        blocking = result.blocking
        if blocking is not None:
            return CheckResult(text=policy.refusal_text(blocking.name), findings=findings, blocked_by=blocking.name)
        return CheckResult(text=result.redacted, findings=findings)
