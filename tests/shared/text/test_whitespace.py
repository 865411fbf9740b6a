from shared.contracts.envelope import ChatMessage
from shared.models.chat_render import render_plain
from shared.text.whitespace import tidy_whitespace


class TestTidyWhitespace:
    def test_collapses_spaces_and_blank_lines(self) -> None:
        """Runs of spaces and of blank lines shrink; ends are stripped."""
        assert tidy_whitespace("  a   b \n\n\n\nc  ") == "a b\n\nc"

    def test_code_fences_are_kept(self) -> None:
        """Indentation inside a fenced block is not touched."""
        text = "see:\n```python\ndef f():\n    return   1\n```\nok"
        assert tidy_whitespace(text) == text


class TestRenderPlain:
    def test_transcript_ends_with_assistant(self) -> None:
        """System text comes first, then labelled turns, then the open assistant turn."""
        messages = [
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Hi"),
            ChatMessage(role="assistant", content="Hello"),
            ChatMessage(role="user", content="Capital of France?"),
        ]
        assert render_plain(messages) == (
            "Be brief.\n\nUser: Hi\nAssistant: Hello\nUser: Capital of France?\nAssistant:"
        )
