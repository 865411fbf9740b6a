"""Offline language detection with py3langid (its model ships inside the package)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.preprocess.protected_spans import segments

#: How much of a prompt, in multiples of ``max_chars``, is looked at for its prose (the rest never decides).
_HEAD_FACTOR = 8

__all__ = ["DEFAULT_CANDIDATES", "LanguageDetector", "LanguageGuess"]

#: BCP 47 "undetermined": what is recorded when the detector is not confident.
UNDETERMINED = "und"
#: Languages the detector chooses among. Fewer candidates make short prompts far less ambiguous
#: (py3langid knows 97, many rare; "Pages 10-20 are missing" is 0.19 English among all, 0.6 among these).
DEFAULT_CANDIDATES = (
    *("en", "fr", "de", "es", "it", "pt", "nl", "ru", "uk", "pl", "cs", "sv", "da", "no", "fi"),
    *("tr", "ar", "he", "fa", "hi", "zh", "ja", "ko", "vi", "id", "th", "el", "ro", "hu"),
)


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

    def __init__(
        self, *, min_confidence: float = 0.5, max_chars: int = 2000, candidates: Sequence[str] = DEFAULT_CANDIDATES
    ) -> None:
        self.min_confidence = min_confidence
        self.max_chars = max_chars
        self.candidates = list(candidates)
        self._identifier: Any = None

    def warm_up(self) -> None:
        """Load the model (about 2 s)."""
        if self._identifier is not None:
            return
        from py3langid.langid import MODEL_FILE, LanguageIdentifier  # noqa: PLC0415 - heavy, loaded once

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if self.candidates:
            identifier.set_languages(self.candidates)
        identifier.classify("warm up the detector")  # the first call builds lookup tables
        self._identifier = identifier

    def detect(self, text: str) -> LanguageGuess:
        """The most likely language; ``und`` below ``min_confidence`` or for text without letters."""
        if self._identifier is None:
            self.warm_up()
        # Code, URLs, emails and numbers say nothing about the language the user writes in. Only the first
        # characters decide (below), so only a bounded head of a long prompt is cut into segments.
        text = " ".join(part.text for part in segments(text[: self.max_chars * _HEAD_FACTOR]) if not part.protected)
        if not any(ch.isalpha() for ch in text):
            return LanguageGuess(UNDETERMINED, 0.0)
        # The first characters decide: a 1 MB prompt costs no more than a long paragraph.
        language, probability = self._identifier.classify(text[: self.max_chars])
        confidence = round(float(probability), 2)
        if confidence < self.min_confidence:
            return LanguageGuess(UNDETERMINED, confidence)
        return LanguageGuess(str(language), confidence)
