import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.preprocess.protected_spans import protected_spans, segments


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


def _reference_spans(text: str) -> list[tuple[int, int, str]]:
    """The original (quadratic) definition: each pattern's matches that overlap no earlier span, sorted."""
    from services.preprocess.protected_spans import _PATTERNS, _trim

    taken: list[tuple[int, int, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.start(), _trim(kind, match.start(), match.end(), text)
            if not any(start < t_end and t_start < end for t_start, t_end, _ in taken):
                taken.append((start, end, kind))
    return sorted(taken)


# Characters that make every pattern match, overlap and end early.
_SPAN_ALPHABET = st.sampled_from([*list("`1a.@-_ \n\t:/w+%x"), "https://", "www.", "```", "    "])


class TestComplexity:
    """Issue 23 (3): spans must be linear; a 200,000-character prompt once took 163 s here."""

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("1 " * 100_000, id="numbers"),
            pytest.param("`a` " * 50_000, id="inline-code"),
            pytest.param("a." * 100_000, id="email-boundaries"),
            pytest.param("a-" * 100_000, id="email-dashes"),
            pytest.param("www." * 50_000, id="urls"),
            pytest.param("a@b." * 50_000, id="ats"),
            pytest.param("```\n" * 50_000, id="fences"),
        ],
    )
    def test_worst_inputs_at_the_size_limit_are_fast(self, text: str) -> None:
        """The worst inputs found, at the prompt limit, take well under a second (they took minutes)."""
        t0 = time.process_time()
        spans = protected_spans(text)
        assert time.process_time() - t0 < 2.0
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_SPAN_ALPHABET, max_size=60).map("".join))
    def test_same_spans_as_the_definition(self, text: str) -> None:
        """The linear merge finds exactly the spans the pairwise definition finds."""
        assert protected_spans(text) == _reference_spans(text)

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=300))
    def test_segments_cover_any_text(self, text: str) -> None:
        """Any text is cut into segments that join back to it."""
        assert "".join(s.text for s in segments(text)) == text

    def test_email_local_part_up_to_64(self) -> None:
        """An address's local part is at most 64 characters (RFC 5321); a longer run is not an address."""
        assert protected_spans("x" * 64 + "@example.org") == [(0, 76, "email")]
        assert protected_spans("x" * 65 + "@example.org") == []
