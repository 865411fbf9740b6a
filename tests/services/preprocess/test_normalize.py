from services.preprocess.normalize import normalize_text


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

    def test_line_endings_and_whitespace(self) -> None:
        """CRLF becomes LF and runs of spaces and blank lines collapse; tabs and newlines survive."""
        text, changes = normalize_text("a  b\r\n\r\n\r\n\r\nc\td ")
        assert text == "a b\n\nc\td"
        assert changes == ["line_endings", "whitespace"]
