"""Fitting a chat into the serving model's context: drop the oldest turns, keep the system prompt."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from shared.contracts.envelope import ChatMessage
from shared.contracts.errors import PipelineError

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
    everything = list(range(len(messages)))
    tokens = count(messages)
    if tokens <= budget:
        return everything, tokens
    groups = _exchanges(messages)

    def without(k: int) -> list[int]:
        gone = {i for group in groups[:k] for i in group}
        return [i for i in everything if i not in gone]

    @functools.cache
    def tokens_without(k: int) -> int:
        return count([messages[i] for i in without(k)])

    # Fewer messages never need more tokens, so the fewest exchanges to drop are found by bisection:
    # a few counts, not one per turn (a long history must not cost seconds).
    least = tokens_without(len(groups))
    if least > budget:
        latest = "the latest message" + (" with the system prompt" if len(without(len(groups))) > 1 else "")
        msg = f"{latest} has {least} tokens; model {model} allows {budget}"
        if groups:
            msg += f" (after dropping {sum(len(g) for g in groups)} earlier messages)"
        raise PipelineError("prompt_too_long", msg)
    low, high = 1, len(groups)
    while low < high:
        mid = (low + high) // 2
        if tokens_without(mid) <= budget:
            high = mid
        else:
            low = mid + 1
    return without(high), tokens_without(high)


def _exchanges(messages: Sequence[ChatMessage]) -> list[list[int]]:
    """Droppable history, oldest first: a user turn with the answer after it, or a lone message.

    System messages and the last message are never in it.
    """
    groups: list[list[int]] = []
    last = len(messages) - 1
    i = 0
    while i < last:
        if messages[i].role == "system":
            i += 1
            continue
        if messages[i].role == "user" and i + 1 < last and messages[i + 1].role == "assistant":
            groups.append([i, i + 1])
            i += 2
        else:
            groups.append([i])
            i += 1
    return groups
