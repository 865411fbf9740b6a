import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.postprocess.polish import (
    _NEXT_TURN_LABEL,
    _NEXT_TURN_TOKEN,
    _SENTENCE_END,
    balance_code_fences,
    cut_loops,
    normalize_lists,
    polish_answer,
    strip_template_tokens,
    trim_truncated,
    turn_start,
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


#: The patterns before issue 23's hunt: quadratic on long blank runs and long runs of marks.
_OLD_NEXT_TURN = re.compile(
    r"\n\s*(?:User|USER|Human|HUMAN)\s*:"
    r"|(?<=\S)\s*(?:<\|im_end\|>|<end_of_turn>|<\|eot_id\|>|<\|endoftext\|>|</s>|<\|im_start\|>|<start_of_turn>)"
    r"(?=\s*\S)",
)
_TURN_ATOMS = ["\n", " ", "\t", "User", "Human", "USER", ":", "a", "</s>", "<|im_end|>", ".", "!"]


class TestHostileSizes:
    """Issue 23: an answer's polish is linear in its length."""

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("\n\n" * 100_000, id="blank-lines"),
            pytest.param("\n " * 100_000, id="blank-runs"),
            pytest.param(".!" * 100_000, id="marks"),
            pytest.param("a\n" * 100_000, id="short-lines"),
        ],
    )
    def test_worst_answers_are_fast(self, text: str) -> None:
        t0 = time.process_time()
        polish_answer(text)
        assert time.process_time() - t0 < 2.0

    @settings(max_examples=400, deadline=None)
    @given(st.lists(st.sampled_from(_TURN_ATOMS), max_size=16).map("".join))
    def test_next_turn_found_where_the_regex_found_it(self, text: str) -> None:
        old = _OLD_NEXT_TURN.search(text)
        assert turn_start(text, _NEXT_TURN_LABEL, _NEXT_TURN_TOKEN) == (old.start() if old else None)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(_TURN_ATOMS), max_size=16).map("".join))
    def test_sentence_ends_are_the_regexs(self, text: str) -> None:
        old = re.compile(r"[.!?]+(?=\s)|\n")
        assert [m.span() for m in _SENTENCE_END.finditer(text)] == [m.span() for m in old.finditer(text)]
