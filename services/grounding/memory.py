"""Conversation memory: the turns of each conversation, fed from the turns topic, recalled within a budget."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.contracts.envelope import MemoryTurn
from shared.contracts.turn import Turn

__all__ = ["ConversationMemory", "estimate_tokens"]

Vector = npt.NDArray[np.float32]


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token), used when no counter is given."""
    return len(text) // 4 + 1


@dataclass
class _Stored:
    turn: MemoryTurn
    vector: Vector | None
    tokens: int


class ConversationMemory:
    """Keeps up to ``max_turns`` turns of the ``max_conversations`` most recently active conversations.

    ``recall`` returns the last ``recent_turns`` turns plus the ``relevant_turns`` older turns most
    similar to the question, within a token budget. Turns are keyed by tenant and conversation,
    so one conversation never sees another's, even with the same id under another tenant.
    A turn seen twice (redelivery) is stored once.

    Example:
        >>> memory = ConversationMemory(recent_turns=4)
        >>> memory.add(Turn(request_id="r1", conversation_id="c1", tenant="t", user="Hi", assistant="Hello"))
        >>> [t.user for t in memory.recall("t", "c1")]
        ['Hi']

    """

    def __init__(
        self,
        *,
        recent_turns: int = 4,
        relevant_turns: int = 2,
        max_turns: int = 50,
        max_conversations: int = 10_000,
        min_relevance: float = 0.3,
        count_tokens: Callable[[str], int] = estimate_tokens,
    ) -> None:
        self.recent_turns = recent_turns
        self.relevant_turns = relevant_turns
        self.max_turns = max(max_turns, 1)
        self.max_conversations = max_conversations
        self.min_relevance = min_relevance
        self.count_tokens = count_tokens
        self._turns: OrderedDict[tuple[str, str], deque[_Stored]] = OrderedDict()

    def add(self, turn: Turn, vector: Vector | None = None) -> None:
        """Record a finished turn; ``vector`` (its embedding) lets it be recalled by relevance later."""
        key = (turn.tenant, turn.conversation_id)
        turns = self._turns.get(key)
        if turns is None:
            turns = deque(maxlen=self.max_turns)
            self._turns[key] = turns
        self._turns.move_to_end(key)
        if any(s.turn.request_id == turn.request_id for s in turns):
            return
        memory_turn = MemoryTurn(request_id=turn.request_id, user=turn.user, assistant=turn.assistant)
        tokens = self.count_tokens(turn.user) + self.count_tokens(turn.assistant)
        turns.append(_Stored(memory_turn, vector, tokens))
        while len(self._turns) > self.max_conversations:
            self._turns.popitem(last=False)

    def retract(self, turn: Turn) -> bool:
        """Forget the turn of ``turn.request_id`` (its answer never reached the client); whether it was held."""
        turns = self._turns.get((turn.tenant, turn.conversation_id))
        if not turns:
            return False
        kept = [stored for stored in turns if stored.turn.request_id != turn.request_id]
        if len(kept) == len(turns):
            return False
        turns.clear()
        turns.extend(kept)
        return True

    def set_vector(self, turn: Turn, vector: Vector) -> None:
        """Attach a stored turn's embedding (computed after ``add``), so it can be recalled by relevance."""
        for stored in self._turns.get((turn.tenant, turn.conversation_id), ()):
            if stored.turn.request_id == turn.request_id:
                stored.vector = vector

    def recall(
        self,
        tenant: str,
        conversation_id: str,
        *,
        query: Vector | None = None,
        token_budget: int | None = None,
        exclude_request: str | None = None,
    ) -> list[MemoryTurn]:
        """Recent turns and the older turns most relevant to ``query``, oldest first, within ``token_budget``.

        Recent turns come first in the budget (newest first), then relevant ones (most similar first).
        ``exclude_request`` leaves out a redelivered request's own earlier turn.
        """
        stored = [s for s in self._turns.get((tenant, conversation_id), ()) if s.turn.request_id != exclude_request]
        if not stored or self.recent_turns + self.relevant_turns == 0:
            return []
        split = max(len(stored) - self.recent_turns, 0)
        older, recent = stored[:split], stored[split:]
        wanted = list(reversed(recent)) + self._relevant(older, query)
        budget = token_budget if token_budget is not None else float("inf")
        chosen: set[int] = set()
        for item in wanted:
            if item.tokens <= budget:
                budget -= item.tokens
                chosen.add(id(item))
        return [s.turn for s in stored if id(s) in chosen]

    def _relevant(self, older: list[_Stored], query: Vector | None) -> list[_Stored]:
        candidates = [s for s in older if s.vector is not None]
        if query is None or not candidates or self.relevant_turns == 0:
            return []
        matrix = np.stack([s.vector for s in candidates if s.vector is not None])
        scores = matrix @ query
        order = np.argsort(-scores)[: self.relevant_turns]
        return [candidates[i] for i in order if scores[i] >= self.min_relevance]

    def __len__(self) -> int:
        return len(self._turns)
