"""Counting prompt tokens exactly as the serving model will see them.

The GGUF's own vocabulary (llama-cpp-python ``vocab_only``: no weights loaded) and its
embedded chat template, so the count includes the template's special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from shared.contracts.envelope import ChatMessage
from shared.models.chat_render import render_plain
from shared.models.registry import ModelEntry

__all__ = ["ChatTokenizer"]


class ChatTokenizer:
    """Renders chat messages with the model's template and counts their tokens.

    Example:
        >>> tok = ChatTokenizer(entry, path)
        >>> tok.warm_up()
        >>> tok.count_messages([ChatMessage(role="user", content="What is the capital of France?")])
        36

    """

    def __init__(self, entry: ModelEntry, path: Path, *, llama: Llama | None = None) -> None:
        self.entry = entry
        self.path = path
        self._llama = llama
        self._formatter: Jinja2ChatFormatter | None = None

    def warm_up(self) -> None:
        """Load the vocabulary (unless a loaded model was given) and the chat template."""
        if self._llama is None:
            self._llama = Llama(str(self.path), vocab_only=True, verbose=False)
        if self.entry.chat_format == "gguf":
            template = self._llama.metadata.get("tokenizer.chat_template")
            if not template:
                msg = f"model {self.entry.name!r} is registered with chat_format gguf but has no chat template"
                raise ValueError(msg)
            eos = self._llama.detokenize([self._llama.token_eos()]).decode("utf-8", errors="ignore")
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token="")

    @property
    def llama(self) -> Llama:
        """The underlying llama-cpp object."""
        if self._llama is None:
            self.warm_up()
        assert self._llama is not None  # noqa: S101 - set by warm_up
        return self._llama

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The exact prompt text the model is given."""
        if self._llama is None:
            self.warm_up()
        if self._formatter is None:
            return render_plain(messages)
        prompt: str = self._formatter(messages=[m.model_dump() for m in messages]).prompt
        return prompt

    def count(self, text: str) -> int:
        """Tokens in ``text`` (special tokens parsed, a BOS added when the model adds one)."""
        return len(self.llama.tokenize(text.encode(), add_bos=self.entry.chat_format == "plain", special=True))

    def count_messages(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens in the rendered prompt."""
        return self.count(self.render(messages))
