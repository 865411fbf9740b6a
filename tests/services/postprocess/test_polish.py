import pytest

from services.postprocess.polish import polish_answer


class TestPolishAnswer:
    def test_clean_answer_unchanged(self) -> None:
        """A clean answer passes as it is."""
        assert polish_answer("The capital of France is Paris.") == ("The capital of France is Paris.", [])

    @pytest.mark.parametrize(
        "raw",
        [
            "Paris.<|im_end|>",
            "<|im_start|>Paris.",
            "Paris.<end_of_turn>",
            "Paris.</s>",
            "Paris.<|eot_id|>",
        ],
    )
    def test_template_tokens_removed(self, raw: str) -> None:
        """Leaked chat-template tokens never reach the user."""
        assert polish_answer(raw) == ("Paris.", ["template_tokens"])

    def test_invented_next_turn_is_cut(self) -> None:
        """A base model writing the user's next line is cut there."""
        assert polish_answer(" Paris.\nUser: and Spain?\nAssistant: Madrid") == ("Paris.", ["next_turn", "whitespace"])

    def test_role_prefix_and_whitespace(self) -> None:
        """A leading 'Assistant:' label and runs of blank lines go."""
        assert polish_answer("Assistant: Paris.\n\n\n\nYes.") == ("Paris.\n\nYes.", ["role_prefix", "whitespace"])
