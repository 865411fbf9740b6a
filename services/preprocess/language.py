"""Offline language detection with py3langid (its model ships inside the package)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LanguageDetector", "LanguageGuess"]

#: BCP 47 "undetermined": what is recorded when the detector is not confident.
UNDETERMINED = "und"


@dataclass(frozen=True)
class LanguageGuess:
    """An ISO 639-1 code (or ``und``) and the detector's probability for it."""

    language: str
    confidence: float


class LanguageDetector:
    """Guesses the language of a text; short or ambiguous texts come out as ``und``.

    Example:
        >>> detector = LanguageDetector()
        >>> detector.warm_up()
        >>> detector.detect("Quelle est la capitale de la France ?")
        LanguageGuess(language='fr', confidence=0.95)

    """

    def __init__(self, *, min_confidence: float = 0.5, max_chars: int = 2000) -> None:
        self.min_confidence = min_confidence
        self.max_chars = max_chars
        self._identifier: Any = None

    def warm_up(self) -> None:
        """Load the model (about 2 s)."""
        if self._identifier is not None:
            return
        from py3langid.langid import MODEL_FILE, LanguageIdentifier  # noqa: PLC0415 - heavy, loaded once

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier.classify("warm up the detector")  # the first call builds lookup tables
        self._identifier = identifier

    def detect(self, text: str) -> LanguageGuess:
        """The most likely language; ``und`` below ``min_confidence`` or for text without letters."""
        if self._identifier is None:
            self.warm_up()
        if not any(ch.isalpha() for ch in text):
            return LanguageGuess(UNDETERMINED, 0.0)
        # The first characters decide: a 1 MB prompt costs no more than a long paragraph.
        language, probability = self._identifier.classify(text[: self.max_chars])
        confidence = round(float(probability), 2)
        if confidence < self.min_confidence:
            return LanguageGuess(UNDETERMINED, confidence)
        return LanguageGuess(str(language), confidence)
