"""Conversation memory: the last turns of each conversation, fed from the turns topic."""

from __future__ import annotations

from collections import OrderedDict, deque

from shared.messaging.envelope import MemoryTurn, Turn

__all__ = ["ConversationMemory"]


class ConversationMemory:
    """Keeps the last ``max_turns`` turns of the ``max_conversations`` most recently active conversations.

    Turns are keyed by tenant and conversation, so one tenant never sees another's.
    A turn seen twice (redelivery) is stored once.

    Example:
        >>> memory = ConversationMemory(max_turns=4)
        >>> memory.add(Turn(request_id="r1", conversation_id="c1", tenant="t", user="Hi", assistant="Hello"))
        >>> [t.user for t in memory.recent("t", "c1")]
        ['Hi']

    """

    def __init__(self, max_turns: int = 4, max_conversations: int = 10_000) -> None:
        self.max_turns = max_turns
        self.max_conversations = max_conversations
        self._turns: OrderedDict[tuple[str, str], deque[MemoryTurn]] = OrderedDict()

    def add(self, turn: Turn) -> None:
        """Record a finished turn."""
        key = (turn.tenant, turn.conversation_id)
        turns = self._turns.get(key)
        if turns is None:
            turns = deque(maxlen=max(self.max_turns, 1))
            self._turns[key] = turns
        self._turns.move_to_end(key)
        if any(t.request_id == turn.request_id for t in turns):
            return
        turns.append(MemoryTurn(request_id=turn.request_id, user=turn.user, assistant=turn.assistant))
        while len(self._turns) > self.max_conversations:
            self._turns.popitem(last=False)

    def recent(self, tenant: str, conversation_id: str, *, exclude_request: str | None = None) -> list[MemoryTurn]:
        """The conversation's last turns, oldest first.

        ``exclude_request`` leaves out a redelivered request's own earlier turn.
        """
        if self.max_turns == 0:
            return []
        turns = self._turns.get((tenant, conversation_id), ())
        return [t for t in turns if t.request_id != exclude_request][-self.max_turns :]

    def __len__(self) -> int:
        return len(self._turns)
