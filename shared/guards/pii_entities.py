"""Names and places beyond spaCy's small model: street addresses, span clean-up, lower-case names after cues.

- ``detect_addresses``: street addresses in English, German, French, Spanish, Italian, Dutch,
  Nordic and Portuguese shapes, one line or several (number, street, flat, postcode, city,
  country), in any case.
- ``clean_entity_span``: an NER span never crosses a line break, and a heading or form label
  (``EXPERIENCE``, ``Name:``, ``Skills``) is never a name.
- ``cued_names``: lower-case names right after the words people introduce names with
  (``my name is``, ``i'm``, ``dear``, ``call``, ``customer:``), which a cased model misses.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

__all__ = [
    "FIELD_LABELS",
    "clean_entity_span",
    "cued_names",
    "cued_places",
    "detect_addresses",
    "first_names",
    "listed_names",
]

_STREET_WORDS = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|terrace|close|crescent|"
    r"square|sq|highway|hwy|parkway|pkwy|circle|cir|row|walk|gardens|grove|hill|mews|park"
)
_UNIT = r"(?:,?[^\S\n]*(?:apt\.?|apartment|suite|ste\.?|unit|flat|floor|fl\.?|#)[^\S\n]*[\w-]+)?"
_PLACE = r"[^\W\d_][^\W\d_'.-]*(?:[^\S\n]+[^\W\d_][^\W\d_'.-]*){0,3}"
_POSTCODE = (
    r"(?:\d{4}[^\S\n]?[A-Z]{2}\b|\d{4,5}|\d{2}-\d{3}|\d{3}[^\S\n]\d{2}|\d{4}-\d{3}|[A-Z]\d{2}[^\S\n]?[A-Z0-9]{4}"
    r"|[A-Za-z]{1,2}\d[A-Za-z\d]?[^\S\n]?\d[A-Za-z]{2})"
)
# Further parts of an address after a comma or a line break: "75009 Paris", "Oakland", "United Kingdom".
_POSTAL_TAIL = (
    r"(?:[^\S\n]*[,;\n][^\S\n]*(?:"
    + _POSTCODE
    + r"(?:[^\S\n]+"
    + _PLACE
    + r")?|"
    + _PLACE
    + r"(?:[^\S\n]+"
    + _POSTCODE
    + r")?)){0,3}"
)
_US_TAIL = (
    r"(?:,[^\S\n]*"
    + _PLACE
    + r",?[^\S\n]*(?:[A-Za-z]{2}[^\S\n]+\d{5}(?:-\d{4})?|[A-Z]{2}(?:[^\S\n]+[A-Z]\d[A-Z][^\S\n]?\d[A-Z]\d)?))?"
)

_ADDRESS_PATTERNS = [
    # 742 Evergreen Terrace, Apt 2B, Springfield, IL 62704 / 14 Harcourt Street, Dublin 2
    re.compile(
        r"(?i)\b\d{1,5}[a-z]?[^\S\n]+(?:[^\W\d_][\w'.-]*[^\S\n]+){1,4}(?:"
        + _STREET_WORDS
        + r")\b\.?(?=[^\S\n]*(?:[,\n;]|$|\d|apt|suite|unit|flat))"
        + _UNIT
        + _US_TAIL
        + _POSTAL_TAIL
    ),
    # Flat 12, 5 Albion Road
    re.compile(
        r"(?i)\b(?:flat|apt\.?|apartment|unit|suite)[^\S\n]+\w+,[^\S\n]*\d{1,5}[^\S\n]+(?:[^\W\d_][\w'.-]*[^\S\n]+){1,4}"
        r"(?:" + _STREET_WORDS + r")\b\.?" + _POSTAL_TAIL
    ),
    # Lindenstraße 14, Bahnhofstrasse 45, Hauptstr. 7, Kerkstraat 101, Drottninggatan 53, Storgata 10
    re.compile(
        r"(?i)\b[^\W\d_]+(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|straat|laan|plein|gracht|"
        r"kade|steeg|gatan|gata|gade|vej|veien|vägen|tie|katu)[^\S\n]*\d{1,4}[a-z]?\b" + _UNIT + _POSTAL_TAIL
    ),
    # 18 rue de la République, 7 avenue Jean Médecin, 12 boulevard Haussmann
    re.compile(
        r"(?i)\b\d{1,4}(?:[^\S\n]?(?:bis|ter))?,?[^\S\n]+(?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|"
        r"quai|cours|route)[^\S\n]+(?:[\w'.-]+[^\S\n]+){0,4}?[\w'.-]+" + r"(?=,|\n|$)" + _POSTAL_TAIL
    ),
    # Calle de Alcalá 48, Via Roma 25, Rua das Flores 112, ul. Floriańska 3, Avenida da Liberdade
    re.compile(
        r"(?i)\b(?:calle|c/|avenida|avda\.?|plaza|paseo|carrer|via|viale|piazza|corso|largo|rua|travessa|ul\.|ulica|"
        r"aleja|al\.|caddesi|sokak|vinohradská)[^\S\n]+(?:[^\W\d_][\w'.-]*[^\S\n]+){0,4}?[^\W\d_][\w'.-]*"
        r"(?:,?[^\S\n]*\d{1,4}[a-z]?)?" + _UNIT + _POSTAL_TAIL
    ),
    # A street word followed by a number: Vinohradská 12, Bağdat Caddesi 155 (capitalised word + number + postcode)
    re.compile(
        r"\b[A-ZÀ-Þ][^\W\d_]+(?:[^\S\n]+[A-ZÀ-Þ][^\W\d_]+)?[^\S\n]+\d{1,4},[^\S\n]*\d{3}[^\S\n]?\d{2}\b" + _POSTAL_TAIL
    ),
]
_MIN_ADDRESS_CHARS = 8
_TAIL_WORDS = frozenset({"phone", "tel", "mobile", "email", "fax", "call", "ring", "or", "and"})

#: Words that head sections or label fields of CVs, forms and letters: never a person or a place.
FIELD_LABELS = frozenset(
    {
        "name", "address", "phone", "mobile", "email", "e-mail", "contact", "profile", "summary", "objective",
        "experience", "work experience", "education", "skills", "languages", "references", "hobbies",
        "interests", "projects", "certifications", "publications", "awards", "curriculum vitae", "resume",
        "résumé", "date of birth", "nationality", "signature", "subject", "from", "to", "cc", "priority",
        "reporter", "customer", "description", "issue", "callback", "notes", "event", "when", "where",
        "kontakt", "telefon", "adresse", "nombre", "teléfono", "correo", "dirección", "indirizzo", "tel",
        "expérience", "compétences", "formation", "langues", "profil", "ausbildung", "berufserfahrung",
    }
)  # fmt: skip
_CUES = re.compile(
    r"(?i)(?:\bmy\s+name\s+is|\bi\s+am|\bi'm|\bit's|\bthis\s+is|\bdear|\bcall|\bask|\bcustomer:?|\bship\s+to:?|"
    r"\bcontact:?|\bregards,?|\bcheers,?|\bthanks,?)[^\S\n]+"
    r"((?:[a-z][a-z'-]+)(?:[^\S\n]+[a-z]\.)?(?:[^\S\n]+[a-z][a-z'-]+)?)"
)
_PLACE_CUES = re.compile(
    r"(?i)\b(?:moved\s+to|move\s+to|moving\s+to|live\s+in|living\s+in|based\s+in|born\s+in|flew\s+from|"
    r"flying\s+to|trip\s+to|visiting)[^\S\n]+((?:[a-z][a-z'-]{3,})(?:[^\S\n]+[a-z][a-z'-]{3,})?)"
)
# A given name from the list, then one or two capitalised words (with name particles): "Giulia Conti".
_PARTICLES = r"(?:(?:de|da|do|dos|das|del|della|di|van|von|der|den|la|le|el|al|bin|ben|ter|du)[^\S\n]+){0,2}"
_FULL_NAME = re.compile(
    r"\b([A-Z][a-zà-ÿ]+)[^\S\n]+(?:[A-Z]\.[^\S\n]+)?" + _PARTICLES + r"([A-ZÀ-Þ][a-zà-ÿıçşğ'-]+)"
    r"(?:[^\S\n]+" + _PARTICLES + r"[A-ZÀ-Þ][a-zà-ÿıçşğ'-]+)?\b"
)
# Capitalised words that follow a given name without making a person ("Grace Street", "Mercedes Bank").
_NOT_SURNAMES = frozenset(
    {
        "street", "road", "avenue", "lane", "square", "park", "bank", "hotel", "university", "college", "school",
        "city", "group", "studio", "systems", "inc", "ltd", "gmbh", "day", "month", "monday", "tuesday",
        "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march", "april", "may",
        "june", "july", "august", "september", "october", "november", "december", "and", "the", "of",
    }
)  # fmt: skip


@cache
def first_names() -> frozenset[str]:
    """Given names of 20 locales (``first_names.txt``, from Faker's person providers)."""
    lines = (files(__package__) / "first_names.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def listed_names(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of "Given Surname" pairs whose given name is on the list."""
    names = first_names()
    return [
        (m.start(), m.end())
        for m in _FULL_NAME.finditer(text)
        if m.group(1) in names and m.group(2).lower() not in _NOT_SURNAMES and m.group(1).lower() not in FIELD_LABELS
    ]


# Common words that follow a cue but are not names ("I'm sorry", "this is great", "call me").
_NOT_NAMES = frozenset(
    {
        "me", "us", "you", "him", "her", "them", "it", "the", "a", "an", "not", "so", "very", "sorry", "sure", "from",
        "in", "at", "on", "here", "there", "back", "going", "trying", "looking", "writing", "calling", "new", "just",
        "also", "still", "happy", "glad", "fine", "great", "good", "ok", "okay", "all", "and", "to", "for", "with",
        "about", "your", "my", "our", "their", "his", "is", "was", "be", "been", "done", "ready", "moving", "afraid",
        "interested", "available", "working", "a.", "the.", "now", "today", "tomorrow", "later", "again", "if",
        "that", "what", "how", "why", "when", "where", "who", "can", "will", "would", "should", "could", "please",
    }
)  # fmt: skip


def detect_addresses(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each street address (one or several lines), longest first where they overlap."""
    found: list[tuple[int, int]] = []
    for pattern in _ADDRESS_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.start(), len(m.group().rstrip(" ,.\n")) + m.start()
            # A trailing part that is a field label ("Mobile", "phone") belongs to the next field.
            while (cut := max(text.rfind(",", start, end), text.rfind("\n", start, end))) > start and (
                text[cut + 1 : end].strip().lower() in FIELD_LABELS | _TAIL_WORDS
            ):
                end = cut
            if end - start >= _MIN_ADDRESS_CHARS and all(end <= s or start >= e for s, e in found):
                found.append((start, end))
    return sorted(found)


def clean_entity_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span cut at its first line break, or ``None`` when what is left is a heading or a field label."""
    value = text[start:end]
    if "\n" in value:
        first, _, _ = value.partition("\n")
        end = start + len(first.rstrip())
        value = text[start:end]
    stripped = value.strip(" :-·|,.")
    if not stripped or stripped.lower() in FIELD_LABELS:
        return None
    # A whole line in capitals that is a known section word, or followed by a colon, is a label.
    line_end = text.find("\n", end)
    rest = text[end : line_end if line_end >= 0 else len(text)]
    if rest.lstrip().startswith(":") and len(stripped.split()) == 1:
        return None
    return start, end


def cued_places(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of lower-case words after a place cue (``moved to lisbon``): candidates to confirm by NER."""
    spans = []
    for m in _PLACE_CUES.finditer(text):
        words = m.group(1).split()
        if words[0].lower() in _NOT_NAMES or not m.group(1).islower():
            continue
        spans.append((m.start(1), m.start(1) + len(words[0])))
    return spans


def cued_names(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of lower-case names after an introducing cue (``my name is olivia grant``)."""
    spans = []
    for m in _CUES.finditer(text):
        if not m.group(1).islower():
            continue
        words = m.group(1).split()
        while words and words[-1].lower() in _NOT_NAMES:
            words.pop()
        if not words or words[0].lower() in _NOT_NAMES or any(w.lower() in _NOT_NAMES for w in words):
            continue
        start = m.start(1)
        end = start + len(" ".join(words)) if len(words) == len(m.group(1).split()) else start + len(words[0])
        spans.append((start, end))
    return spans
