from services.preprocess.spans import protected_spans, segments


class TestProtectedSpans:
    def test_kinds(self) -> None:
        """Code blocks, inline code, URLs, emails and numbers are found with their kind."""
        text = "Mail a@b.io, see https://x.io/p?q=1. Run `ls -la` 3 times:\n```sh\necho  hi\n```"
        kinds = [(text[s:e], k) for s, e, k in protected_spans(text)]
        assert kinds == [
            ("a@b.io", "email"),
            ("https://x.io/p?q=1", "url"),
            ("`ls -la`", "inline_code"),
            ("3", "number"),
            ("```sh\necho  hi\n```", "code_block"),
        ]

    def test_url_inside_code_is_code(self) -> None:
        """Overlapping matches go to the earlier pattern: a URL in a code block is part of the block."""
        text = "```\ncurl https://x.io\n```"
        assert protected_spans(text) == [(0, len(text), "code_block")]

    def test_unterminated_fence_runs_to_the_end(self) -> None:
        """A code block that is never closed protects the rest of the text."""
        assert protected_spans("hi ```py\nx = 1") == [(3, 14, "code_block")]

    def test_indented_code(self) -> None:
        """Lines indented by four spaces (Markdown code) are protected."""
        text = "Fix this:\n    def f():\n        return  1\nthanks"
        [(start, end, kind)] = protected_spans(text)
        assert (text[start:end], kind) == ("    def f():\n        return  1", "indented_code")

    def test_segments_join_back(self) -> None:
        """Joining the segments gives the text back."""
        text = "a `b` c http://d.e f 12.5%"
        assert "".join(s.text for s in segments(text)) == text
        assert [s.protected for s in segments(text)] == [False, True, False, True, False, True]
