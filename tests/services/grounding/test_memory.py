import numpy as np

from services.grounding.memory import ConversationMemory
from shared.contracts.turn import Turn


def turn(rid: str, conv: str = "c", tenant: str = "t", user: str = "u") -> Turn:
    return Turn(request_id=rid, conversation_id=conv, tenant=tenant, user=user, assistant=f"a-{rid}")


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


class TestConversationMemory:
    def test_recent_turns_in_order(self) -> None:
        """Without a query only the newest recent_turns turns come back, oldest first."""
        memory = ConversationMemory(recent_turns=2)
        for rid in ("1", "2", "3"):
            memory.add(turn(rid))
        assert [t.request_id for t in memory.recall("t", "c")] == ["2", "3"]

    def test_relevant_older_turns_are_added(self) -> None:
        """An older turn similar to the question is recalled along with the recent ones, in time order."""
        memory = ConversationMemory(recent_turns=1, relevant_turns=1, min_relevance=0.5)
        memory.add(turn("1"), unit(1, 0, 0))
        memory.add(turn("2"), unit(0, 1, 0))
        memory.add(turn("3"), unit(0, 0, 1))
        assert [t.request_id for t in memory.recall("t", "c", query=unit(0, 1, 0.1))] == ["2", "3"]
        assert [t.request_id for t in memory.recall("t", "c", query=unit(1, 0, 0))] == ["1", "3"]

    def test_a_turn_is_recalled_before_its_embedding_and_by_relevance_after(self) -> None:
        """Grounding adds a turn at once and its vector when embedded: a quick follow-up already sees it."""
        memory = ConversationMemory(recent_turns=1, relevant_turns=1, min_relevance=0.5)
        memory.add(turn("1"))
        assert [t.request_id for t in memory.recall("t", "c", query=unit(1, 0))] == ["1"]
        memory.add(turn("2"), unit(0, 1))
        assert [t.request_id for t in memory.recall("t", "c", query=unit(1, 0))] == ["2"]  # "1" has no vector yet
        memory.set_vector(turn("1"), unit(1, 0))
        memory.set_vector(turn("1", conv="other"), unit(0, 1))  # another conversation's turn: nothing to update
        assert [t.request_id for t in memory.recall("t", "c", query=unit(1, 0))] == ["1", "2"]

    def test_irrelevant_older_turns_are_not(self) -> None:
        """Older turns below the relevance threshold stay out."""
        memory = ConversationMemory(recent_turns=1, relevant_turns=2, min_relevance=0.5)
        memory.add(turn("1"), unit(1, 0))
        memory.add(turn("2"), unit(1, 0))
        assert [t.request_id for t in memory.recall("t", "c", query=unit(0, 1))] == ["2"]

    def test_token_budget(self) -> None:
        """Recall stops at the token budget, keeping the newest turns first."""
        memory = ConversationMemory(recent_turns=5, count_tokens=lambda text: len(text.split()))
        for rid in ("1", "2", "3"):
            memory.add(Turn(request_id=rid, conversation_id="c", tenant="t", user="one two three", assistant="four"))
        assert [t.request_id for t in memory.recall("t", "c", token_budget=9)] == ["2", "3"]
        assert memory.recall("t", "c", token_budget=3) == []

    def test_tenants_and_conversations_never_cross(self) -> None:
        """Another tenant's conversation with the same id, or another conversation, is never recalled."""
        memory = ConversationMemory(recent_turns=4, relevant_turns=4, min_relevance=-1)
        memory.add(turn("1", tenant="a"), unit(1, 0))
        memory.add(turn("2", tenant="a", conv="other"), unit(1, 0))
        assert memory.recall("b", "c", query=unit(1, 0)) == []
        assert [t.request_id for t in memory.recall("a", "c", query=unit(1, 0))] == ["1"]
        assert [t.request_id for t in memory.recall("a", "other", query=unit(1, 0))] == ["2"]

    def test_redelivered_turn_is_stored_once(self) -> None:
        """The same request's turn twice is one turn."""
        memory = ConversationMemory()
        memory.add(turn("1"))
        memory.add(turn("1"))
        assert len(memory.recall("t", "c")) == 1

    def test_a_retracted_turn_is_forgotten_and_may_come_back(self) -> None:
        """A retraction removes its request's turn (others stay); the turn sent again later is kept again."""
        memory = ConversationMemory()
        memory.add(turn("1"))
        memory.add(turn("2"))
        assert memory.retract(turn("2").retraction())
        assert not memory.retract(turn("9").retraction())
        assert [t.request_id for t in memory.recall("t", "c")] == ["1"]
        memory.add(turn("2"))
        assert [t.request_id for t in memory.recall("t", "c")] == ["1", "2"]

    def test_excludes_the_request_itself(self) -> None:
        """A redelivered request does not see its own earlier answer as memory."""
        memory = ConversationMemory()
        memory.add(turn("1"))
        memory.add(turn("2"))
        assert [t.request_id for t in memory.recall("t", "c", exclude_request="2")] == ["1"]

    def test_bounded(self) -> None:
        """Memory keeps max_turns per conversation and evicts the least recent conversations."""
        memory = ConversationMemory(recent_turns=10, max_turns=2, max_conversations=2)
        for rid in ("1", "2", "3"):
            memory.add(turn(rid))
        assert [t.request_id for t in memory.recall("t", "c")] == ["2", "3"]
        memory.add(turn("4", conv="b"))
        memory.add(turn("5", conv="d"))
        assert len(memory) == 2
        assert memory.recall("t", "c") == []
