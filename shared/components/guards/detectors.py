"""Plain detectors for personal data in text: emails, phone numbers, payment cards (Luhn-checked).

Pure functions with no guardrails import, so they are cheap to test and reuse; the
guardrails validators in ``validators.py`` wrap them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Detection", "detect_credit_cards", "detect_emails", "detect_phones", "detect_pii", "luhn_valid", "redact"]


@dataclass(frozen=True)
class Detection:
    """One detected span of personal data."""

    kind: str
    start: int
    end: int


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")
# International (+CC ...) or North-American shaped numbers; digits may be grouped by spaces, dots or dashes.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\w])")
_MIN_PHONE_DIGITS = 9
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:  # noqa: PLR2004 - the Luhn rule
                d -= 9
        total += d
    return total % 10 == 0


def detect_emails(text: str) -> list[Detection]:
    """Email addresses."""
    return [Detection("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]


def detect_credit_cards(text: str) -> list[Detection]:
    """Payment card numbers: 13-19 digits, optionally grouped, that pass Luhn."""
    found = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):  # noqa: PLR2004 - card number lengths
            found.append(Detection("credit_card", m.start(), m.end()))
    return found


def detect_phones(text: str) -> list[Detection]:
    """Phone numbers with at least 9 digits."""
    # Fewer than 9 digits is rarely a phone number (extensions, years, prices).
    return [
        Detection("phone", m.start(), m.end())
        for m in _PHONE.finditer(text)
        if len(re.sub(r"\D", "", m.group())) >= _MIN_PHONE_DIGITS
    ]


def detect_pii(text: str, kinds: frozenset[str] = frozenset({"email", "phone", "credit_card"})) -> list[Detection]:
    """All detections of the given kinds, without overlaps (cards win over phones), in text order."""
    candidates: list[Detection] = []
    if "credit_card" in kinds:
        candidates += detect_credit_cards(text)
    if "email" in kinds:
        candidates += detect_emails(text)
    if "phone" in kinds:
        candidates += detect_phones(text)
    chosen: list[Detection] = []
    for det in candidates:
        if all(det.end <= c.start or det.start >= c.end for c in chosen):
            chosen.append(det)
    return sorted(chosen, key=lambda d: d.start)


def redact(text: str, detections: list[Detection]) -> str:
    """Replace each detection with a ``<KIND>`` placeholder."""
    out = []
    pos = 0
    for det in sorted(detections, key=lambda d: d.start):
        out.append(text[pos : det.start])
        out.append(f"<{det.kind.upper()}>")
        pos = det.end
    out.append(text[pos:])
    return "".join(out)
