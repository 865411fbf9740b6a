import asyncio

import numpy as np
import pytest

from services.grounding.memory import ConversationMemory, TurnsInFlight
from shared.messaging.envelope import Turn


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


class TestTurnsInFlight:
    async def test_nothing_in_flight_is_settled_at_once(self) -> None:
        assert await TurnsInFlight().settled(("t", "c"), timeout_s=0.01)

    async def test_a_follow_up_waits_for_its_conversations_turn(self) -> None:
        """The reader resumes only once every turn of its conversation in flight is added; others do not block it."""
        in_flight = TurnsInFlight()
        added: list[str] = []
        release = asyncio.Event()

        async def add(name: str) -> None:
            with in_flight.adding(("t", "c")):
                await release.wait()
                added.append(name)

        writers = [asyncio.create_task(add("first")), asyncio.create_task(add("second"))]
        await asyncio.sleep(0)
        assert in_flight.pending(("t", "c")) == 2
        assert await in_flight.settled(("t", "other"), timeout_s=0.01)  # another conversation: no wait
        reader = asyncio.create_task(in_flight.settled(("t", "c"), timeout_s=5))
        await asyncio.sleep(0.01)
        assert not reader.done()
        release.set()
        assert await reader
        assert sorted(added) == ["first", "second"]
        assert in_flight.pending(("t", "c")) == 0
        await asyncio.gather(*writers)

    async def test_a_turn_that_never_lands_times_out(self) -> None:
        in_flight = TurnsInFlight()
        with in_flight.adding(("t", "c")):
            assert not await in_flight.settled(("t", "c"), timeout_s=0.01)
        assert await in_flight.settled(("t", "c"), timeout_s=0.01)

    async def test_a_failed_embedding_still_settles(self) -> None:
        in_flight = TurnsInFlight()
        with pytest.raises(RuntimeError, match="embedding failed"), in_flight.adding(("t", "c")):
            raise RuntimeError("embedding failed")
        assert in_flight.pending(("t", "c")) == 0
        assert await in_flight.settled(("t", "c"), timeout_s=0.01)
