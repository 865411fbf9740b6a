"""Rendering chat messages as plain text, for models without a chat template (base models)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.contracts.envelope import ChatMessage

__all__ = ["PLAIN_STOPS", "render_plain"]

_LABELS = {"system": "", "user": "User: ", "assistant": "Assistant: "}
#: Where a base model's continuation must stop: it starts writing the next turn.
PLAIN_STOPS = ["\nUser:", "\nUSER:"]


def render_plain(messages: Sequence[ChatMessage]) -> str:
    """Render as a transcript that ends with ``Assistant:`` for the model to complete.

    Example:
        >>> render_plain([ChatMessage(role="user", content="Hi")])
        'User: Hi\\nAssistant:'

    """
    lines = []
    for msg in messages:
        if msg.role == "system":
            lines.append(msg.content.strip() + "\n")
        else:
            lines.append(f"{_LABELS[msg.role]}{msg.content.strip()}")
    lines.append("Assistant:")
    return "\n".join(lines)
