"""Fitting a chat into the serving model's context: drop the oldest turns, keep the system prompt."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared.messaging.envelope import ChatMessage
from shared.messaging.errors import PipelineError

__all__ = ["fit_to_budget"]

#: Tokens of a rendered chat (template included).
CountFn = Callable[[Sequence[ChatMessage]], int]


def fit_to_budget(messages: Sequence[ChatMessage], count: CountFn, budget: int, *, model: str) -> tuple[list[int], int]:
    """Return the indexes of the messages that fit and their token count.

    System messages and the last message are always kept; earlier turns go oldest first.
    When even that is too long, a ``prompt_too_long`` error says the limit and the count.

    Example:
        >>> fit_to_budget(history, tokenizer.count_messages, 3840, model="qwen2.5-coder-0.5b-instruct")
        ([0, 3, 4, 5], 3790)

    """
    kept = list(range(len(messages)))
    tokens = count(messages)
    while tokens > budget:
        droppable = [i for i in kept[:-1] if messages[i].role != "system"]
        if not droppable:
            latest = "the latest message" + (" with the system prompt" if len(kept) > 1 else "")
            msg = f"{latest} has {tokens} tokens; model {model} allows {budget}"
            if len(kept) < len(messages):
                msg += f" (after dropping {len(messages) - len(kept)} earlier messages)"
            raise PipelineError("prompt_too_long", msg)
        # Drop a whole exchange (a user turn and the answer after it) so the history stays coherent.
        first = droppable[0]
        gone = {first}
        if len(droppable) > 1 and droppable[1] == first + 1 and messages[first + 1].role == "assistant":
            gone.add(first + 1)
        kept = [i for i in kept if i not in gone]
        tokens = count([messages[i] for i in kept])
    return kept, tokens
