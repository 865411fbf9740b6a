from pathlib import Path

import pytest
from llama_cpp import Llama

from services.preprocess.typos import ModelVocabulary, TypoCorrector
from shared.models.registry import ModelRegistry
from tests.conftest import CHAT_MODEL, SMALL_MODEL


@pytest.fixture(scope="module")
def corrector() -> TypoCorrector:
    c = TypoCorrector()
    c.warm_up()
    return c


def vocabulary(registry: ModelRegistry, models_dir: Path, model: str) -> ModelVocabulary:
    llama = Llama(str(registry.get(model).path_in(models_dir)), vocab_only=True, verbose=False)
    return ModelVocabulary(lambda b: llama.tokenize(b, add_bos=False, special=False))


class TestTypoCorrector:
    def test_corrects_and_reports_positions(self, corrector: TypoCorrector) -> None:
        """Each correction says the word, its replacement and where it was."""
        text, found = corrector.correct("Please recieve the langauge pack", message_index=2)
        assert text == "Please receive the language pack"
        assert [(c.original, c.corrected, c.position, c.message_index) for c in found] == [
            ("recieve", "receive", 7, 2),
            ("langauge", "language", 19, 2),
        ]

    def test_sentence_start_keeps_its_capital(self, corrector: TypoCorrector) -> None:
        """A capitalised typo at the start of a sentence is corrected and stays capitalised."""
        assert corrector.correct("Definately. Recieve it.")[0] == "Definitely. Receive it."

    @pytest.mark.parametrize(
        "text",
        [
            "call recieve_data() now",  # snake_case identifier
            "the myRecieve helper",  # inner capital
            "RECIEVE IT",  # all caps
            "ask Recieve about it",  # capitalised inside a sentence: a name
            "see `recieve` here",  # inline code
            "```\nrecieve = 1\n```",  # code block
            "open https://recieve.example.com/langauge",  # URL
            "mail recieve@langauge.org",  # email
            "use obj.recieve and recieve2",  # dotted and with digits
            "recieved-langauge",  # hyphenated compound
        ],
    )
    def test_guards(self, corrector: TypoCorrector, text: str) -> None:
        """Code, URLs, emails, identifiers, ALL CAPS, inner capitals and names are never corrected."""
        assert corrector.correct(text) == (text, [])

    def test_ambiguous_words_are_left_alone(self, corrector: TypoCorrector) -> None:
        """Without a clear winner ("wierd": weird or wired) nothing is changed."""
        assert corrector.correct("that is wierd")[1] == []

    def test_edit_distance_two_is_not_corrected(self, corrector: TypoCorrector) -> None:
        """Only one edit away counts as confident."""
        assert corrector.correct("tommorow")[1] == []

    def test_words_the_model_knows_are_kept(self, corrector: TypoCorrector) -> None:
        """A word the model's vocabulary has whole is not corrected."""
        known = {"recieve"}
        assert corrector.correct("recieve it", knows_word=known.__contains__) == ("recieve it", [])

    def test_short_words_are_skipped(self) -> None:
        """Words shorter than min_length are never touched."""
        strict = TypoCorrector(min_length=5)
        assert strict.correct("teh end")[1] == []


class TestModelVocabulary:
    def test_real_vocabularies(self, registry: ModelRegistry, models_dir: Path) -> None:
        """Whole-word tokens are known (with the leading space); misspellings split into pieces are not."""
        qwen = vocabulary(registry, models_dir, CHAT_MODEL)
        gemma = vocabulary(registry, models_dir, SMALL_MODEL)
        assert qwen.knows("kafka")
        assert gemma.knows("kafka")
        assert not qwen.knows("langauge")
        assert not gemma.knows("langauge")
        # The vocabularies differ: gemma has "recieve" whole, qwen does not.
        assert gemma.knows("recieve")
        assert not qwen.knows("recieve")

    def test_answers_are_cached(self) -> None:
        """The tokenizer is asked once per word."""
        calls: list[bytes] = []

        def tokenize(b: bytes) -> list[int]:
            calls.append(b)
            return [1]

        vocab = ModelVocabulary(tokenize)
        assert vocab.knows("word")
        assert vocab.knows("word")
        assert calls == [b" word"]
