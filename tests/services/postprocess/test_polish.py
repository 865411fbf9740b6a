import pytest

from services.postprocess.polish import (
    balance_code_fences,
    cut_loops,
    normalize_lists,
    polish_answer,
    strip_template_tokens,
    trim_truncated,
)


class TestPolishAnswer:
    def test_clean_answer_unchanged(self) -> None:
        """A clean answer passes as it is, with no changes recorded."""
        out = polish_answer("The capital of France is Paris.")
        assert (out.text, out.changes, out.truncated) == ("The capital of France is Paris.", [], False)

    @pytest.mark.parametrize(
        "raw",
        ["Paris.<|im_end|>", "<|im_start|>Paris.", "Paris.<end_of_turn>", "Paris.</s>", "Paris.<|eot_id|>"],
    )
    def test_template_tokens_removed(self, raw: str) -> None:
        """Leaked chat-template tokens never reach the user."""
        assert polish_answer(raw).text == "Paris."

    def test_invented_next_turn_is_cut(self) -> None:
        """A base model writing the user's next line is cut there."""
        out = polish_answer(" Paris.\nUser: and Spain?\nAssistant: Madrid")
        assert out.text == "Paris."
        assert "next_turn" in out.changes

    def test_every_change_is_recorded_in_order(self) -> None:
        """Each step that changed the text is named once, in the order the steps ran."""
        out = polish_answer("Assistant: paris is a old city ,  I think")
        assert out.text == "Paris is an old city, I think."
        assert out.changes == [
            "role_prefix",
            "punctuation_spacing",
            "article_agreement",
            "sentence_capitals",
            "final_punctuation",
            "whitespace",
        ]

    def test_length_finish_marks_truncated(self) -> None:
        """Only a max_tokens stop trims the last sentence and marks the answer truncated."""
        raw = "Paris is the capital. It has two mill"
        assert polish_answer(raw, finish_reason="length").text == "Paris is the capital."
        assert polish_answer(raw, finish_reason="length").truncated
        assert polish_answer(raw, finish_reason="stop").text == "Paris is the capital. It has two mill."

    def test_code_block_is_byte_for_byte(self) -> None:
        """Nothing inside a fenced block changes, however ungrammatical."""
        code = "```\nx = a  an apple ,b\nx = a  an apple ,b\nx = a  an apple ,b\n```"
        assert polish_answer(f"Code:\n\n{code}").text == f"Code:\n\n{code}"


class TestSteps:
    def test_strip_template_tokens_takes_role_label(self) -> None:
        """A start token takes its role label with it."""
        assert strip_template_tokens("<|im_start|>assistant\nHi<|im_end|>") == "Hi"

    def test_balance_code_fences(self) -> None:
        """An open fence is closed; a balanced text is left alone."""
        assert balance_code_fences("```py\nx = 1") == "```py\nx = 1\n```"
        assert balance_code_fences("```\nx\n```") == "```\nx\n```"

    def test_cut_loops_at_first_repeated_sentence(self) -> None:
        """Everything from the first repeated sentence on goes."""
        raw = "Robots are useful. They lift boxes. Robots are useful. They lift"
        assert cut_loops(raw) == "Robots are useful. They lift boxes."

    def test_short_repeats_are_not_loops(self) -> None:
        """Short lines ("Yes.") may repeat."""
        assert cut_loops("Yes.\nYes.\nNo.") == "Yes.\nYes.\nNo."

    def test_phrase_loop_collapsed_but_digits_kept(self) -> None:
        """A phrase said three times becomes one; grouped digits are not a phrase."""
        assert cut_loops("so very very very good") == "so very good"
        assert cut_loops("card 4111 1111 1111 1111") == "card 4111 1111 1111 1111"

    def test_trim_truncated(self) -> None:
        """The unfinished sentence goes; an answer with no boundary gets an ellipsis; a finished one stays."""
        assert trim_truncated("One. Two thr") == "One."
        assert trim_truncated("- a\n- b\n- c tw") == "- a\n- b"
        assert trim_truncated("No boundary at all") == "No boundary at all…"
        assert trim_truncated("Done.") == "Done."

    def test_normalize_lists(self) -> None:
        """Odd bullets become dashes and a list after a paragraph line gets a blank line."""
        assert normalize_lists("Items:\n• a\n• b") == "Items:\n\n- a\n- b"
        assert normalize_lists("Items:\n\n- a\n- b") == "Items:\n\n- a\n- b"
