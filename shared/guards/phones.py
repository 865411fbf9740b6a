"""Phone numbers in any country's format: phone-shaped digit runs, checked by ``phonenumbers`` and context.

A candidate is a run of 7-15 digits with the separators phone numbers use (spaces, dots,
dashes, slashes, brackets, a ``(0)`` trunk prefix). It is a phone number when

- it is written internationally (``+41 …``, ``0044 …``) and ``phonenumbers`` parses it as a
  possible number of that country; or
- ``phonenumbers`` finds it a valid number of one of ``REGIONS`` (``0NNN NN NN NN`` in
  Germany, ``0N.NN.NN.NN.NN`` in France, ``(415) 555-0199`` in the US, ...); or
- a phone word stands right before it (``tel``, ``mobile``, ``call``, ``whatsapp``, ``Telefon``,
  ``tél``, ...) and it has at least 8 digits: the short Nordic and Asian formats
  (``NN-NN-NN-NN``, ``NNNN NNNN``) are valid in too many places to be told apart otherwise.

Dates, times, versions, ISBNs, prices and long plain numbers are not candidates or are rejected.
"""

from __future__ import annotations

import re
from functools import cache

__all__ = ["REGIONS", "detect_phone_spans"]

#: Countries whose national formats are tried, besides every international ``+CC`` number.
REGIONS = (
    "US", "GB", "DE", "FR", "CH", "AT", "NL", "BE", "ES", "IT", "PT", "IE", "SE", "NO", "DK", "FI",
    "PL", "CZ", "AU", "NZ", "CA", "IN", "SG", "HK", "JP", "BR", "MX", "ZA", "TR", "AE", "MA",
)  # fmt: skip

_CANDIDATE = re.compile(
    r"(?<![\w+/.-])(?:\+|00)?\(?\d[\d \t().\-/]{4,22}\d(?:[^\S\n]?(?:x|ext\.?)[^\S\n]?\d{1,5})?(?![\w-]|[.,]\d)",
)
_CONTEXT = re.compile(
    r"(?i)\b(?:tel|tél|phone|ph|mobile|mobil|mob|cell|handy|telefon|telefono|teléfono|téléphone|portable|"
    r"call|ring|text|sms|whatsapp|fax|hotline|number|nummer|numéro|número|desk|contact|kontakt|reach)\b"
    r"[^\d\n]{0,20}$"
)
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_YEAR_FIRST = re.compile(r"^(?:19|20)\d\d[^\S\n]?[-/]")
_NANP = re.compile(r"^(?:1[\s.-])?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}$")
# Words before a number that say it is something else: "ISBN 0-201-...", "lottery numbers 04 11 23 35 41".
_NOT_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:isbn|issn|ean|sku|order|invoice|patent|version|build|section|lottery|numbers\s+were|serial|"
    r"tracking|account|iban|card)\b[^\n]{0,25}$"
)
_MIN_DIGITS, _MAX_DIGITS = 7, 15
_MIN_CONTEXT_DIGITS = 8
_SEPARATORS = re.compile(r"[\s().\-/]")


@cache
def _phonenumbers() -> object:
    import phonenumbers  # noqa: PLC0415 - heavy metadata, loaded on first use

    return phonenumbers


def _parses(number: str, region: str | None, *, valid: bool) -> bool:
    pn = _phonenumbers()
    try:
        parsed = pn.parse(number, region)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - phonenumbers raises NumberParseException for anything odd
        return False
    return bool(pn.is_valid_number(parsed) if valid else pn.is_possible_number(parsed))  # type: ignore[attr-defined]


def _plausible_shape(value: str, digits: str) -> bool:
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS or _DATE.match(value) or _YEAR_FIRST.match(value):
        return False
    groups = [g for g in _SEPARATORS.split(value) if g]
    # A one-digit last group is a check digit (ISBN-10, section 4.2.1); a one-digit first group is a
    # version number, except the North-American trunk 1.
    if len(groups) > 1 and (len(groups[-1]) == 1 or (len(groups[0]) == 1 and not value.startswith(("1", "+")))):
        return False
    # One long unbroken run (an order or account number) is not written like a phone number,
    # unless it is international (+447700900456).
    if len(groups) == 1 and not value.startswith(("+", "00")) and len(digits) > 11:  # noqa: PLR2004
        return False
    # ISBN-13 / EAN prefixes written with hyphens.
    return not (digits.startswith(("978", "979")) and len(digits) == 13 and "-" in value)  # noqa: PLR2004


def _is_phone(value: str, before: str) -> bool:
    core = re.split(r"\s?(?:x|ext\.?)\s?\d", value)[0]
    digits = re.sub(r"\D", "", core)
    if not _plausible_shape(core, digits):
        return False
    number = core.replace("(0)", "")
    if number.startswith("00"):
        number = "+" + number[2:]
    if number.startswith("+"):
        return _parses(number, None, valid=False)
    if _NOT_PHONE_CONTEXT.search(before):
        return False
    if _CONTEXT.search(before) and len(digits) >= _MIN_CONTEXT_DIGITS:
        return True
    # National formats: valid in some region, written the way people write phone numbers: with a trunk 0,
    # North-American shape, or three or more groups; dashes alone only in the North-American shape.
    groups = [g for g in _SEPARATORS.split(core) if g]
    # Eight digits without a trunk 0 (Nordic, Singapore, Hong Kong) are valid in too many places: context only.
    short = len(digits) <= _MIN_CONTEXT_DIGITS and not core.startswith(("0", "("))
    if (
        short
        or len(digits) < _MIN_CONTEXT_DIGITS
        or (set(re.sub(r"[\d()]", "", core)) == {"-"} and not _NANP.match(core))
    ):
        return False
    shaped = core.startswith(("0", "(")) or _NANP.match(core) is not None or len(groups) >= 3  # noqa: PLR2004
    return shaped and any(_parses(number, region, valid=True) for region in REGIONS)


def detect_phone_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each phone number in ``text``."""
    spans = []
    for m in _CANDIDATE.finditer(text):
        value = m.group().rstrip(" ).-/")
        start = m.start()
        if value.startswith("(") and ")" not in value:
            value, start = value[1:], start + 1
        before = text[max(0, start - 40) : start]
        if _is_phone(value, before):
            spans.append((start, start + len(value)))
    return spans
