"""The safety stage's work: scan the request's own messages and apply the policy."""

from __future__ import annotations

from typing import Literal

from services.safety.policy import SafetyPolicy
from shared.components.chat_render import render_plain
from shared.components.guards import TextGuard
from shared.messaging.envelope import ChatMessage, Envelope, Finding, Safety
from shared.messaging.errors import PipelineError

__all__ = ["SafetyChecker"]

_SEVERITY: dict[str, Literal["low", "medium", "high"]] = {"block": "high", "redact": "medium", "warn": "low"}


class SafetyChecker:
    """Runs the guard over every user message of the assembled prompt and decides the verdict.

    Verdict: ``block`` if any finding's action is block, else ``redact`` if any is redact,
    else ``allow``. A redacted prompt is recorded in the safety section; the grounding
    section is left as it was.

    Example:
        >>> checker = SafetyChecker(TextGuard(), SafetyPolicy.load())
        >>> checker.process(envelope).safety.verdict
        'allow'

    """

    def __init__(self, guard: TextGuard, policy: SafetyPolicy) -> None:
        self.guard = guard
        self.policy = policy

    def warm_up(self) -> None:
        """Build the guard."""
        self.guard.warm_up()

    def process(self, env: Envelope) -> Envelope:
        """Fill ``safety``."""
        if env.grounding is None:
            raise PipelineError("invalid_message", "safety needs the grounding section")
        findings: list[Finding] = []
        redacted: list[ChatMessage] = []
        for index, msg in enumerate(env.grounding.messages):
            if msg.role != "user":
                redacted.append(msg)
                continue
            scan = self.guard.scan(msg.content)
            for span in scan.spans:
                action = self.policy.action_for(span.check)
                findings.append(
                    Finding(
                        check=span.check,
                        start=span.start,
                        end=span.end,
                        severity=_SEVERITY[action],
                        action=action,
                        message_index=index,
                    )
                )
            to_redact = {s.check for s in scan.spans if self.policy.action_for(s.check) == "redact"}
            redacted.append(ChatMessage(role=msg.role, content=scan.redact_only(to_redact)))

        blocked = [f for f in findings if f.action == "block"]
        if blocked:
            category = blocked[0].check
            safety = Safety(
                verdict="block",
                findings=findings,
                category=category,
                policy_version=self.policy.version,
                refusal=self.policy.refusal_text(category),
            )
        elif any(f.action == "redact" for f in findings):
            safety = Safety(
                verdict="redact",
                findings=findings,
                policy_version=self.policy.version,
                messages=redacted,
                prompt=render_plain(redacted),
            )
        else:
            safety = Safety(verdict="allow", findings=findings, policy_version=self.policy.version)
        return env.model_copy(update={"safety": safety})
