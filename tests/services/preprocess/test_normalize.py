import re
import time
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.preprocess.normalize import _SPACES, _TRAILING, _repair_prose, normalize_text
from services.preprocess.protected_spans import Segment

FREQ = {"so": 1000, "soo": 1, "cool": 500, "col": 100, "good": 900, "god": 300}


def frequency(word: str) -> int:
    return FREQ.get(word, 0)


class TestNormalizeText:
    def test_clean_text_is_untouched(self) -> None:
        """Nothing to repair means no changes recorded."""
        assert normalize_text("What is the capital of France?") == ("What is the capital of France?", [])

    def test_nfkc_folds_compatibility_forms(self) -> None:
        """Full-width letters and ligatures become plain ones."""
        assert normalize_text("ｆｕｌｌ ﬁne") == ("full fine", ["nfkc"])

    def test_invisible_and_bidi_characters_are_removed(self) -> None:
        """Zero-width and bidi-override characters (used to hide instructions) go away."""
        text, changes = normalize_text("pay\u200b\u202eme\u2066 now\x07")
        assert text == "payme now"
        assert changes == ["invisible_chars"]

    def test_invisible_characters_are_removed_inside_code_too(self) -> None:
        """Bidi overrides in code ("Trojan Source") are removed even though code is otherwise exact."""
        text, changes = normalize_text("```py\nif  x:\u202e  pass\n```")
        assert text == "```py\nif  x:  pass\n```"
        assert changes == ["invisible_chars"]

    def test_line_endings_and_whitespace(self) -> None:
        """CRLF becomes LF and runs of spaces and blank lines collapse; tabs and newlines survive."""
        text, changes = normalize_text("a  b\r\n\r\n\r\n\r\nc\td ")
        assert text == "a b\n\nc\td"
        assert changes == ["line_endings", "whitespace"]

    def test_mojibake(self) -> None:
        """UTF-8 read as Windows-1252 is repaired (ftfy), and the curly quote it hid is straightened."""
        assert normalize_text("The caf\u00c3\u00a9 doesn\u00e2\u20ac\u2122t open") == (
            "The café doesn't open",
            ["mojibake", "quotes"],
        )

    def test_quotes_and_dashes(self) -> None:
        """Curly quotes become straight ones and dash variants an ASCII hyphen."""
        assert normalize_text("“Yes” – it’s 9—5") == ('"Yes" - it\'s 9-5', ["quotes", "dashes"])

    @pytest.mark.parametrize(
        ("raw", "clean"),
        [
            ("sooooo cool!!!!!!", "so cool!"),
            ("cooooool", "cool"),
            ("goooood", "good"),
            ("what????", "what?"),
            ("wait.......", "wait..."),
            ("zzzzzz", "zz"),
        ],
    )
    def test_floods(self, raw: str, clean: str) -> None:
        """Letter floods shrink to the more common of one or two letters; mark floods to one mark."""
        assert normalize_text(raw, frequency=frequency) == (clean, ["floods"])

    @pytest.mark.parametrize(
        "raw",
        [
            "```py\nx  =  'sooooo'  # “quoted” —\n```",
            "`a   —   b`",
            "https://example.com/a––b?q=“x”",
            "ｊｏｅ@example.com",
            "1,000,000.00",
            "    indented  “code”  here",
        ],
    )
    def test_protected_spans_stay_byte_exact(self, raw: str) -> None:
        """Code, URLs, emails and numbers are not repaired."""
        assert normalize_text(raw, frequency=frequency) == (raw, [])

    @pytest.mark.parametrize("raw", ["Part iii", "AAAA batteries", "hmm, www", "Brrr"])
    def test_short_and_capital_runs_are_not_floods(self, raw: str) -> None:
        """Three letters in a row and capital runs are left as written."""
        assert normalize_text(raw, frequency=frequency) == (raw, [])

    def test_whitespace_after_inline_code_collapses(self) -> None:
        """Prose next to protected spans is still tidied."""
        assert normalize_text("run `ls`   now  please") == ("run `ls` now please", ["whitespace"])


class TestHostileSizes:
    """Issue 23: repair is linear in the prompt and fast at the size limit, whatever its shape."""

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("1 " * 100_000, id="numbers"),
            pytest.param("`a` " * 50_000, id="inline-code"),
            pytest.param("aaaab" * 40_000, id="floods-in-one-word"),
            pytest.param("a." * 100_000, id="email-boundaries"),
            pytest.param(" " * 200_000, id="blanks"),  # 33 s before the blank patterns were made linear
            pytest.param(" \t" * 100_000, id="spaces-and-tabs"),  # 160 s
            pytest.param("a" + " " * 199_998 + "\n", id="blanks-before-a-newline"),
        ],
    )
    def test_worst_inputs_at_the_size_limit(self, text: str) -> None:
        """200,000 characters of the worst shapes found take well under the stage's 2 s of CPU."""
        t0 = time.process_time()
        normalize_text(text, frequency=lambda _w: 1)
        assert time.process_time() - t0 < 2.0

    def test_blank_patterns_do_what_the_backtracking_ones_did(self) -> None:
        """The linear blank patterns replace exactly what the quadratic ones replaced."""
        spaces, trailing = re.compile(r"(?<=\S)[ \t]{2,}(?![ \t]*\n)"), re.compile(r"[ \t]+\n")

        @settings(max_examples=400, deadline=None)
        @given(st.text(alphabet=" \t\na", max_size=20))
        def same(text: str) -> None:
            assert _SPACES.sub(" ", text) == spaces.sub(" ", text)
            assert _TRAILING.sub("\n", text) == trailing.sub("\n", text)

        same()

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(["\n", " ", "x", "`", "é"]), st.text(alphabet=" \t\n.!?aosx1é", max_size=12))
    def test_fast_path_gives_what_the_steps_give(self, before: str, text: str) -> None:
        """The shortcut for segments no step changes returns exactly what running every step returns."""
        part = Segment(text, 1, protected=False)
        fast = _repair_prose(part, before, None, [])
        with patch("services.preprocess.normalize._ASCII_REPAIRABLE", re.compile("")):
            slow = _repair_prose(part, before, None, [])
        assert fast == slow
