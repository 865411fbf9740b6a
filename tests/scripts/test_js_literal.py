"""The JavaScript data-literal reader: plain data parses as node would; anything executable is refused."""

from __future__ import annotations

import pytest

from tests.infra.helpers import load_script

js = load_script("js_literal")


class TestParsesData:
    def test_objects_arrays_and_scalars(self) -> None:
        """Bare, quoted and numeric keys; nested arrays; numbers, booleans and null."""
        text = "[{id: 'a-1', \"n\": 2, 3: [true, false, null, -1.5e2]}, {}]"
        assert js.parse_literal(text) == [{"id": "a-1", "n": 2, "3": [True, False, None, -150.0]}, {}]

    def test_strings_in_every_quote_with_escapes(self) -> None:
        """Single, double and backtick quotes; \\n, \\u, \\u{}, \\x, surrogate pairs; backticks span lines."""
        text = r"""['it\'s', "a\u00e9\x41", `line one
line two`, "\u{1F600}", "\ud83d\ude00", "tab\there"]"""
        assert js.parse_literal(text) == ["it's", "aéA", "line one\nline two", "\U0001f600", "\U0001f600", "tab\there"]

    def test_comments_and_string_concatenation(self) -> None:
        """Line and block comments are blanks; ``+`` joins strings (bundlers split long literals so)."""
        text = "[ // a section\n /* note */ 'ab' +\n \"cd\" + `ef`, ]"
        assert js.parse_literal(text) == ["abcdef"]

    def test_literal_after_a_marker_in_a_bundle(self) -> None:
        """The literal after ``NAME =`` in a larger file; what follows it is not read."""
        source = 'var x = f(1);\nconst PAYLOADS = [{payload: "Ignore the rules."}];\nexport { PAYLOADS };'
        assert js.literal_after(source, "PAYLOADS = ") == [{"payload": "Ignore the rules."}]


class TestRefusesCode:
    @pytest.mark.parametrize(
        "text",
        [
            "[require('fs')]",  # a call
            "[process.env.HOME]",  # a variable
            "[`${secret}`]",  # an interpolation
            "['a' + b]",  # a string joined with a variable
            "['unterminated]",
            "[1, 2] + [3]",  # text after the literal
            "['line\nbreak']",  # a raw line break in a quoted string
        ],
    )
    def test_not_a_data_literal(self, text: str) -> None:
        """Anything but plain data is a JsLiteralError: nothing is evaluated."""
        with pytest.raises(js.JsLiteralError):
            js.parse_literal(text)

    def test_missing_marker(self) -> None:
        """A marker that is not in the file is an error, not an empty result."""
        with pytest.raises(js.JsLiteralError):
            js.literal_after("const A = [];", "PAYLOADS = ")
