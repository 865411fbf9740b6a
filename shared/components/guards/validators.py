"""guardrails-ai validators built on the plain detectors (registered once, at import)."""

from __future__ import annotations

from typing import Any

from guardrails.validator_base import (
    ErrorSpan,
    FailResult,
    PassResult,
    ValidationResult,
    Validator,
    register_validator,
)

from shared.components.guards.detectors import detect_pii, redact

__all__ = ["PIIValidator"]


@register_validator(name="llmops/pii", data_type="string")
class PIIValidator(Validator):
    """Finds emails, phone numbers and payment cards; the fix value has them replaced by placeholders.

    Example:
        >>> guard = Guard().use(PIIValidator(kinds=["email"], on_fail="fix"))
        >>> guard.validate("mail me at a@b.org").validated_output
        'mail me at <EMAIL>'

    """

    def __init__(self, kinds: list[str] | None = None, on_fail: Any = None, **kwargs: Any) -> None:
        kinds = kinds or ["email", "phone", "credit_card"]
        super().__init__(on_fail=on_fail, kinds=kinds, **kwargs)
        self.kinds = frozenset(kinds)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:  # noqa: ARG002 - guardrails' signature
        text = str(value)
        detections = detect_pii(text, self.kinds)
        if not detections:
            return PassResult()
        return FailResult(
            error_message=f"found {', '.join(sorted({d.kind for d in detections}))}",
            fix_value=redact(text, detections),
            error_spans=[ErrorSpan(start=d.start, end=d.end, reason=d.kind) for d in detections],
        )
