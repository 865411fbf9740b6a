from services.grounding.memory import ConversationMemory
from shared.messaging.envelope import Turn


def turn(rid: str, conv: str = "c", tenant: str = "t", user: str = "u") -> Turn:
    return Turn(request_id=rid, conversation_id=conv, tenant=tenant, user=user, assistant=f"a-{rid}")


class TestConversationMemory:
    def test_keeps_the_last_turns_in_order(self) -> None:
        """Only the newest max_turns turns are kept, oldest first."""
        memory = ConversationMemory(max_turns=2)
        for rid in ("1", "2", "3"):
            memory.add(turn(rid))
        assert [t.request_id for t in memory.recent("t", "c")] == ["2", "3"]

    def test_tenants_and_conversations_are_separate(self) -> None:
        """Another tenant's conversation with the same id is not seen."""
        memory = ConversationMemory()
        memory.add(turn("1", tenant="a"))
        assert memory.recent("b", "c") == []
        assert memory.recent("a", "other") == []

    def test_redelivered_turn_is_stored_once(self) -> None:
        """The same request's turn twice is one turn."""
        memory = ConversationMemory()
        memory.add(turn("1"))
        memory.add(turn("1"))
        assert len(memory.recent("t", "c")) == 1

    def test_excludes_the_request_itself(self) -> None:
        """A redelivered request does not see its own earlier answer as memory."""
        memory = ConversationMemory()
        memory.add(turn("1"))
        memory.add(turn("2"))
        assert [t.request_id for t in memory.recent("t", "c", exclude_request="2")] == ["1"]

    def test_least_recent_conversations_are_evicted(self) -> None:
        """Memory is bounded by the number of conversations."""
        memory = ConversationMemory(max_conversations=2)
        memory.add(turn("1", conv="a"))
        memory.add(turn("2", conv="b"))
        memory.add(turn("3", conv="c"))
        assert len(memory) == 2
        assert memory.recent("t", "a") == []
