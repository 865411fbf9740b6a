import pytest

from services.postprocess.grammar import (
    fix_article_agreement,
    fix_doubled_words,
    fix_final_punctuation,
    fix_punctuation_spacing,
    fix_sentence_capitals,
)


class TestPunctuationSpacing:
    @pytest.mark.parametrize(
        ("raw", "fixed"),
        [
            ("a , b", "a, b"),
            ("end .Next one", "end. Next one"),
            ("one,two", "one, two"),
            ("done.Then", "done. Then"),
            ("wait,, what..", "wait, what."),
            ("Well...", "Well..."),
            ("3.5 and 1,000 and U.S.A and .NET", "3.5 and 1,000 and U.S.A and .NET"),
        ],
    )
    def test_cases(self, raw: str, fixed: str) -> None:
        """Spaces go before marks and come after them; numbers, acronyms and ellipses stay."""
        assert fix_punctuation_spacing(raw) == fixed


class TestDoubledWords:
    def test_doubled_removed_legit_kept(self) -> None:
        """ "the the" loses one; "had had" and "that that" are grammatical."""
        assert fix_doubled_words("The the cat had had that that") == "The cat had had that that"


class TestArticleAgreement:
    @pytest.mark.parametrize(
        ("raw", "fixed"),
        [
            ("a apple", "an apple"),
            ("An car", "A car"),
            ("a hour", "an hour"),
            ("an useful tool", "a useful tool"),
            ("a umbrella", "an umbrella"),
            ("an one-off", "a one-off"),
            ("a FAQ, an SQL query", "a FAQ, an SQL query"),
            ("vitamin a is", "vitamin a is"),
            ("a uninstalled app", "a uninstalled app"),
        ],
    )
    def test_cases(self, raw: str, fixed: str) -> None:
        """Clear vowel or consonant sounds are fixed; acronyms, letters and unsure words are not."""
        assert fix_article_agreement(raw) == fixed


class TestSentenceCapitals:
    def test_cases(self) -> None:
        """Starts of text, sentences and paragraphs are capitalized; abbreviations and identifiers are not."""
        raw = "hello there. see e.g. this... and that.\n\nnew para. npm.install is odd. x_1 too"
        assert fix_sentence_capitals(raw) == (
            "Hello there. See e.g. this... and that.\n\nNew para. npm.install is odd. x_1 too"
        )


class TestFinalPunctuation:
    @pytest.mark.parametrize(
        ("raw", "fixed"),
        [
            ("It is in France", "It is in France."),
            ("Paris", "Paris"),
            ("Items:\n- one two three", "Items:\n- one two three"),
            ("# A heading here now", "# A heading here now"),
            ("Done already!", "Done already!"),
        ],
    )
    def test_cases(self, raw: str, fixed: str) -> None:
        """Only a closing prose sentence of three words or more gets a full stop."""
        assert fix_final_punctuation(raw) == fixed
