"""Cleaning model output: leaked chat-template tokens, role labels of an invented next turn, whitespace."""

from __future__ import annotations

import re

from shared.components.text import tidy_whitespace

__all__ = ["polish_answer"]

# Special tokens of common chat templates (ChatML, Gemma, Llama 2/3, Mistral) that must never reach a user.
_TEMPLATE_TOKENS = re.compile(
    r"<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|end_of_text|assistant|user|system)\|>"
    r"|<(?:start_of_turn|end_of_turn|bos|eos)>|</?s>|\[/?INST\]"
)
# A model that starts writing the user's next turn: cut the answer there.
_NEXT_TURN = re.compile(r"\n\s*(?:User|USER|Human|HUMAN)\s*:")
_ROLE_PREFIX = re.compile(r"^\s*(?:Assistant|ASSISTANT|assistant|model)\s*:\s*")


def polish_answer(text: str) -> tuple[str, list[str]]:
    """Return the cleaned answer and the names of the steps that changed it.

    Example:
        >>> polish_answer("Paris.<|im_end|>\\nUser: and Spain?")
        ('Paris.', ['template_tokens', 'next_turn'])

    """
    changes: list[str] = []
    cleaned = _TEMPLATE_TOKENS.sub("", text)
    if cleaned != text:
        changes.append("template_tokens")
    match = _NEXT_TURN.search(cleaned)
    if match:
        cleaned = cleaned[: match.start()]
        changes.append("next_turn")
    stripped = _ROLE_PREFIX.sub("", cleaned)
    if stripped != cleaned:
        changes.append("role_prefix")
    tidy = tidy_whitespace(stripped)
    if tidy != stripped:
        changes.append("whitespace")
    return tidy, changes
