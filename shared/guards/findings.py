"""What every guard finds, on input, retrieved context and output: one finding type, one severity table.

Safety (prompts, retrieved chunks) and postprocess (answers) both produce ``GuardFinding``; its
``name`` (``<check>.<type>``: ``pii.email``, ``secrets.api_key``, ``profanity.profanity``,
``leakage.system_prompt``, ``injection.override``) is the key the policy, refusals and the
envelope's ``Finding`` use, and ``to_finding`` is the one place a severity is derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shared.contracts.envelope import Finding
from shared.guards.policy import Action

__all__ = ["REFUSAL_ORDER", "SEVERITY", "SPAN_CHECKS", "GuardFinding", "SuiteResult"]

Severity = Literal["low", "medium", "high"]

SEVERITY: dict[Action, Severity] = {"block": "high", "redact": "medium", "warn": "low"}

# Checks whose findings are exact spans that can be replaced; the others cover the whole text.
SPAN_CHECKS = frozenset({"pii", "secrets"})

# When several checks block, the refusal names the most concrete one (a leak of the instructions or a
# secret, not "prompt injection").
REFUSAL_ORDER = (
    "leakage",
    "secrets",
    "pii",
    "length",
    "banned_topics",
    "injection",
    "context_injection",
    "profanity",
)


@dataclass(frozen=True)
class GuardFinding:
    """One finding: which check, what type, where, how sure, and what the policy does about it.

    Example:
        >>> finding = GuardFinding("pii", "EMAIL", 5, 21, 1.0, "redact")
        >>> finding.name, finding.to_finding().severity
        ('pii.email', 'medium')

    """

    check: str
    type: str
    start: int
    end: int
    score: float
    action: Action

    @property
    def name(self) -> str:
        """``check.type`` in lower case, e.g. ``pii.email``: the key policies and refusals use."""
        return f"{self.check}.{self.type.lower()}"

    @property
    def severity(self) -> Severity:
        """How serious the policy deems it: block is high, redact medium, warn low."""
        return SEVERITY[self.action]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the CLI prints (the span, never the matched text)."""
        return {
            "check": self.check,
            "type": self.type,
            "span": [self.start, self.end],
            "score": round(self.score, 4),
            "action": self.action,
        }

    def to_finding(self, *, message_index: int = -1, document_id: str | None = None, dropped: bool = False) -> Finding:
        """The envelope's ``Finding`` (no matched text); ``dropped``: the retrieved chunk it was in was removed."""
        return Finding(
            check=self.name,
            type=self.type,
            score=round(self.score, 4),
            start=self.start,
            end=self.end,
            # A dropped chunk costs the answer nothing the user sees: recorded at low severity.
            severity="low" if dropped else self.severity,
            action="drop" if dropped else self.action,
            message_index=message_index,
            document_id=document_id,
        )


@dataclass(frozen=True)
class SuiteResult:
    """The findings on one text, the redacted text and the placeholder map.

    ``redacted`` has redact-findings replaced by numbered placeholders (``<EMAIL_1>``, in the map)
    and block-findings by their bare type (``<AWS_SECRET_KEY>``, never in the map); on answers,
    redact-findings are replaced by the output policy's masks.
    """

    text: str
    findings: list[GuardFinding]
    redacted: str
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def verdict(self) -> Literal["allow", "redact", "block"]:
        """``block`` if any finding blocks, else ``redact`` if any was redacted, else ``allow``."""
        actions = {f.action for f in self.findings}
        if "block" in actions:
            return "block"
        return "redact" if "redact" in actions else "allow"

    @property
    def blocking(self) -> GuardFinding | None:
        """The finding a refusal names: of those that block, the most specific check first, then text order."""
        blocks = [f for f in self.findings if f.action == "block"]
        return min(blocks, key=lambda f: REFUSAL_ORDER.index(f.check), default=None)
