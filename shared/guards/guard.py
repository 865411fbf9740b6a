"""Scanning text with a guardrails ``Guard``: findings with spans, and the redacted text.

Used by the safety stage on prompts; the postprocess stage will use the same guards on
answers (DESIGN.md §4: the guards used on both input and output live in ``shared``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from guardrails import Guard, OnFailAction

from shared.guards.detectors import Detection, redact
from shared.guards.offline import go_offline
from shared.guards.validators import PIIValidator

__all__ = ["ScanResult", "Span", "TextGuard"]


@dataclass(frozen=True)
class Span:
    """Where a check fired."""

    check: str
    start: int
    end: int


@dataclass(frozen=True)
class ScanResult:
    """What a scan found, and the text with the findings redacted."""

    text: str
    redacted: str
    spans: list[Span] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing was found."""
        return not self.spans

    def redact_only(self, checks: Collection[str]) -> str:
        """The text with only the spans of ``checks`` replaced (``pii.email`` → ``<EMAIL>``)."""
        chosen = [Detection(s.check.rsplit(".", 1)[-1], s.start, s.end) for s in self.spans if s.check in checks]
        return redact(self.text, chosen)


class TextGuard:
    """A guardrails ``Guard`` over the PII validators, run fully offline.

    Example:
        >>> guard = TextGuard(kinds=["email", "phone", "credit_card"])
        >>> guard.warm_up()
        >>> guard.scan("call +1 415 555 0132").spans[0].check
        'pii.phone'

    """

    def __init__(self, kinds: list[str] | None = None) -> None:
        self.kinds = kinds or ["email", "phone", "credit_card"]
        self._guard: Guard | None = None

    def warm_up(self) -> None:
        """Build the guard; hub telemetry is switched off so nothing leaves the machine."""
        # Validators run in order in the calling thread (GUARDRAILS_RUN_SYNC); no telemetry, no downloads.
        go_offline()
        guard = Guard(name="llmops-pii")
        # Guard() reads ~/.guardrailsrc, whose absence means "metrics on" (an HTTPS exporter to the
        # guardrails hub); switch it off on the instance and for validators so nothing leaves the machine.
        guard.configure(allow_metrics_collection=False)
        self._guard = guard.use(PIIValidator(kinds=self.kinds, on_fail=OnFailAction.FIX))

    def scan(self, text: str) -> ScanResult:
        """Validate ``text``; returns the spans found and the redacted text."""
        if self._guard is None:
            self.warm_up()
        assert self._guard is not None  # noqa: S101 - set by warm_up
        if not text:
            return ScanResult(text=text, redacted=text)
        outcome = self._guard.validate(text)
        spans = [
            Span(check=f"pii.{span.reason}", start=span.start, end=span.end)
            for summary in outcome.validation_summaries or []
            for span in summary.error_spans or []
        ]
        redacted = outcome.validated_output if isinstance(outcome.validated_output, str) else text
        return ScanResult(text=text, redacted=redacted, spans=spans)
