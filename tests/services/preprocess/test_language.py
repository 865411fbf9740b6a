import pytest

from services.preprocess.language import LanguageDetector


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    d = LanguageDetector()
    d.warm_up()
    return d


class TestLanguageDetector:
    @pytest.mark.parametrize(
        ("text", "language"),
        [
            ("What is the capital of France?", "en"),
            ("Quelle est la capitale de la France ?", "fr"),
            ("Wie spät ist es in Berlin?", "de"),
            ("¿Dónde está la biblioteca municipal?", "es"),
            ("東京の天気はどうですか", "ja"),
        ],
    )
    def test_languages(self, detector: LanguageDetector, text: str, language: str) -> None:
        """Common languages are recognised with high confidence."""
        guess = detector.detect(text)
        assert guess.language == language
        assert guess.confidence >= 0.5

    def test_no_letters_is_undetermined(self, detector: LanguageDetector) -> None:
        """Digits and symbols have no language."""
        assert detector.detect("1234 + 5678 = ?").language == "und"

    def test_low_confidence_is_undetermined(self, detector: LanguageDetector) -> None:
        """A very short text is below the confidence floor and recorded as und, with its confidence."""
        guess = detector.detect("hi")
        assert guess.language == "und"
        assert guess.confidence < 0.5
