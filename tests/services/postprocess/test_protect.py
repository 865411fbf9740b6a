from services.postprocess.protect import SENTINEL, mask


class TestMask:
    def test_round_trip(self) -> None:
        """Code, URLs, placeholders and citation marks are hidden and come back unchanged."""
        text = "See `a  b`, https://x.org/a?b=1, <EMAIL_1> [2] and\n```\nraw  text\n```"
        masked = mask(text)
        assert "`" not in masked.text
        assert "https" not in masked.text
        assert "<EMAIL_1>" not in masked.text
        assert "[2]" not in masked.text
        assert masked.text.count(SENTINEL) == 5
        assert masked.unmask() == text

    def test_url_keeps_closing_punctuation_outside(self) -> None:
        """The full stop after a URL is prose, not part of the URL."""
        masked = mask("Go to https://x.org.")
        assert masked.text.endswith(".")
        assert masked.spans == ("https://x.org",)

    def test_dropped_sentinel_is_fine(self) -> None:
        """A rule that cuts text with a sentinel in it loses only that span."""
        masked = mask("a `x` b `y`")
        cut = masked.text[: masked.text.index("b") + 1]
        assert masked.unmask(cut) == "a `x` b"
