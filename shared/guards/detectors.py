"""Plain detectors for personal data and secrets in text, with checksums where the format has one.

Pure functions with no guardrails import, so they are cheap to test and reuse; the
guardrails validators in ``validators.py`` wrap them. Kinds are lower case here
(``email``); placeholders and findings use the upper-case type (``EMAIL``).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

from shared.guards.phones import detect_phone_spans
from shared.text.overlaps import first_non_overlapping

__all__ = [
    "PII_KINDS",
    "SECRET_KINDS",
    "Detection",
    "detect_credit_cards",
    "detect_emails",
    "detect_ibans",
    "detect_ips",
    "detect_phones",
    "detect_pii",
    "detect_secrets",
    "detect_ssns",
    "iban_valid",
    "is_placeholder",
    "luhn_valid",
    "redact",
    "shannon_entropy",
]


@dataclass(frozen=True)
class Detection:
    """One detected span of personal data or a secret."""

    kind: str
    start: int
    end: int


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])")
# International (+CC / 00CC / 1-) or North-American shaped numbers, grouped by spaces, dots or dashes, with an
# optional extension; a digit group right before or after means a longer number (a card that failed Luhn).
_PHONE = re.compile(
    r"(?<![\w+.-])(?<!\d[\s.-])(?:(?:\+|00)\d{1,3}[\s.-]?|1[\s.-])?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])"
    r"\d{3,4}[\s.-]\d{3,4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w-]|[\s.]\d)"
)
_MIN_PHONE_DIGITS = 9
# 12-19 digits in any grouping (single spaces, dashes or dots between digits).
_CARD = re.compile(r"(?<![\w.-])(?:\d[ .-]?){11,18}\d(?![\w-]|[.,]\d)")
# Issuer prefixes: Mir 2, Amex/Diners/JCB 3, Visa 4, Mastercard/Maestro 5, Discover/UnionPay/Maestro/RuPay 6.
_CARD_PREFIX = frozenset("23456")
_CARD_CONTEXT = re.compile(r"(?i)\b(?:card|visa|master\s?card|maestro|amex|cb|karte|carte|tarjeta|carta)\b")
_MIN_CARD_DIGITS, _MAX_CARD_DIGITS = 12, 19
_ISBN_PREFIXES = ("978", "979")
# Area 000, 666 and 9xx, group 00 and serial 0000 are never issued.
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}:?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4})*(?![\w:])")
# A dotted quad right after "version", "v" or "build" is a version number, not an address.
_VERSION_BEFORE = re.compile(r"(?:\bv|version\s*|build\s*|release\s*)$", re.IGNORECASE)

# Secrets with a recognisable shape; the kind becomes the placeholder type.
_SECRET_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
        ),
    ),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}\b")),
    ("api_key", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("api_key", re.compile(r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}")),
    ("api_key", re.compile(r"\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}\b")),
    ("api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])")),
    ("api_key", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("api_key", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("api_key", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
]
# ``name = value`` assignments of credentials: only the value is the secret.
_ASSIGNED_SECRET = re.compile(
    r"(?i)(?:api[_-]?key|access[_-]?key|secret(?:[_-]?(?:access[_-]?)?key)?|auth[_-]?token|token|password|passwd|pwd)"
    r"[\"']?\s*(?:[:=]|=>)\s*[\"']?(?P<value>[^\s\"',;]{8,})"
)
# The AWS secret access key: 40 characters of base64 with no marker of its own. The hub's secrets_present
# (detect-secrets) masks the key id but leaves this in place, which is the gap this closes.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_SECRET_MIN_ENTROPY = 4.0

PII_KINDS = frozenset({"email", "phone", "credit_card", "us_ssn", "iban", "ip_address"})
SECRET_KINDS = frozenset({"private_key", "aws_access_key", "aws_secret_key", "api_key", "token", "password"})


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


def iban_valid(iban: str) -> bool:
    """True when the IBAN (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():  # noqa: PLR2004 - IBAN lengths
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def detect_emails(text: str) -> list[Detection]:
    """Email addresses."""
    return [Detection("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]


def detect_credit_cards(text: str) -> list[Detection]:
    """Payment card numbers: 12-19 digits in any grouping that pass Luhn, with a network prefix or a card word."""
    found = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if not (_MIN_CARD_DIGITS <= len(digits) <= _MAX_CARD_DIGITS and luhn_valid(digits)):
            continue
        if digits.startswith(_ISBN_PREFIXES) and len(digits) == 13:  # noqa: PLR2004 - an ISBN-13/EAN
            continue
        # 12-digit Maestro numbers and unknown networks need the word "card" nearby.
        short_or_other = len(digits) < 13 or digits[0] not in _CARD_PREFIX  # noqa: PLR2004
        if short_or_other and not _CARD_CONTEXT.search(text[max(0, m.start() - 40) : m.start()]):
            continue
        found.append(Detection("credit_card", m.start(), m.end()))
    return found


def detect_phones(text: str) -> list[Detection]:
    """Phone numbers in international, North-American and national formats (``phones.detect_phone_spans``)."""
    spans = detect_phone_spans(text)
    # Fewer than 9 digits is rarely a phone number unless written with a country code or a phone word.
    spans += [
        (m.start(), m.end())
        for m in _PHONE.finditer(text)
        if len(re.sub(r"\D", "", m.group().split("x")[0].split("ext")[0])) >= _MIN_PHONE_DIGITS
        and all(m.end() <= s or m.start() >= e for s, e in spans)
    ]
    return [Detection("phone", s, e) for s, e in sorted(spans)]


def detect_ssns(text: str) -> list[Detection]:
    """US social security numbers in the ``AAA-GG-SSSS`` shape, issued ranges only."""
    return [Detection("us_ssn", m.start(), m.end()) for m in _SSN.finditer(text)]


def detect_ibans(text: str) -> list[Detection]:
    """IBANs, compact or in groups of four, that pass the mod-97 check."""
    return [Detection("iban", m.start(), m.end()) for m in _IBAN.finditer(text) if iban_valid(m.group())]


def detect_ips(text: str) -> list[Detection]:
    """IPv4 and IPv6 addresses (dotted quads after "version"/"v"/"build" are version numbers)."""
    found = []
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 10) : m.start()]):
            continue
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        found.append(Detection("ip_address", m.start(), m.end()))
    for m in _IPV6.finditer(text):
        value = m.group()
        if value.count(":") < 2 or (not any(c.isalpha() for c in value) and "::" not in value):  # noqa: PLR2004
            continue  # times such as 12:30:45 have no hex letters and no "::"
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        found.append(Detection("ip_address", m.start(), m.end()))
    return found


def _aws_secret_like(value: str) -> bool:
    has_classes = (
        any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value)
    )
    return has_classes and shannon_entropy(value) >= _AWS_SECRET_MIN_ENTROPY


# Known key prefixes, stripped before judging whether the rest is a placeholder (sk-xxxx, AKIAXXXX, ghp_xxxx).
_KEY_PREFIX = re.compile(
    r"^(?:sk-(?:proj-|ant-(?:api\d\d-)?)?|gh[pousr]_|github_pat_|[rsp]k_(?:live|test)_|AIza|xox[abposr]-|glpat-|hf_|"
    r"AKIA|ASIA|ABIA|ACCA|AROA|AIDA)"
)
# Variable references: $VAR, ${VAR}, %VAR%, {{ secrets.X }}, <your-key>, os.environ[...], process.env.X.
_VARIABLE_REFERENCE = re.compile(
    r"^(?:\$\{?[A-Za-z_][\w.]*\}?|%[A-Za-z_]\w*%|\{\{.*\}\}|<[^<>]*>|\[[^\[\]]*\]|"
    r"(?:os\.environ|os\.getenv|process\.env|env)\b.*)$"
)
_MAX_FILLER_KINDS = 3
_MIN_PLACEHOLDER_ENTROPY = 2.5
_MIN_ENTROPY_LENGTH = 12


def is_placeholder(value: str) -> bool:
    """True for values that stand in for a secret: ``sk-xxxx…``, ``AKIAXXXX…``, ``${VAR}``, ``YOUR_API_KEY_HERE``."""
    value = value.strip("\"'`")
    if not value or _VARIABLE_REFERENCE.match(value):
        return True
    rest = _KEY_PREFIX.sub("", value)
    # A prefix followed by filler: x's, X's, stars, dots, zeros, dashes.
    if len(set(rest.lower()) - set("-_.")) <= _MAX_FILLER_KINDS or re.fullmatch(r"[xX*.\-_0]+", rest):
        return True
    # A long all-caps word (YOUR_API_KEY_HERE, CHANGE_ME): a name, not a value.
    if re.fullmatch(r"[A-Z][A-Z_]*[A-Z]", value):
        return True
    return len(value) >= _MIN_ENTROPY_LENGTH and shannon_entropy(value) < _MIN_PLACEHOLDER_ENTROPY


def detect_secrets(text: str) -> list[Detection]:
    """API keys, tokens, private keys, AWS key ids and secret keys, and assigned passwords (placeholders are not)."""
    found = [
        Detection(kind, m.start(), m.end())
        for kind, pattern in _SECRET_PATTERNS
        for m in pattern.finditer(text)
        if kind == "private_key" or not is_placeholder(m.group())
    ]
    found += [
        Detection("aws_secret_key", m.start(), m.end())
        for m in _AWS_SECRET.finditer(text)
        if _aws_secret_like(m.group())
    ]
    for m in _ASSIGNED_SECRET.finditer(text):
        value = m.group("value")
        kind = "password" if re.match(r"(?i)p(?:ass)?w", m.group()) else "api_key"
        # "password = <PASSWORD_1>", "${DB_PASSWORD}" or a plain word is not a credential.
        if is_placeholder(value) or (value.isalpha() and kind == "api_key"):
            continue
        found.append(Detection(kind, m.start("value"), m.end("value")))
    return _without_overlaps(found)


_DETECTORS: dict[str, Callable[[str], list[Detection]]] = {
    "iban": detect_ibans,
    "credit_card": detect_credit_cards,
    "us_ssn": detect_ssns,
    "email": detect_emails,
    "ip_address": detect_ips,
    "phone": detect_phones,
}


def _without_overlaps(candidates: list[Detection]) -> list[Detection]:
    """Keep earlier-listed detections over later ones that overlap them; text order."""
    return first_non_overlapping(candidates, lambda d: (d.start, d.end))


def detect_pii(text: str, kinds: Collection[str] = frozenset({"email", "phone", "credit_card"})) -> list[Detection]:
    """All detections of the given kinds, without overlaps (IBANs, cards, SSNs win over phones), in text order."""
    candidates: list[Detection] = []
    for kind, detector in _DETECTORS.items():
        if kind in kinds:
            candidates += detector(text)
    return _without_overlaps(candidates)


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
