from collections.abc import Sequence

import pytest

from services.preprocess.budget import fit_to_budget
from shared.contracts.envelope import ChatMessage
from shared.contracts.errors import PipelineError


def words(messages: Sequence[ChatMessage]) -> int:
    """One token per word: easy to reason about in these tests (the real tokenizers are in test_preprocessor)."""
    return sum(len(m.content.split()) for m in messages)


def chat(*turns: tuple[str, int]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content="w " * n) for role, n in turns]  # type: ignore[arg-type]


class TestFitToBudget:
    def test_fits_untouched(self) -> None:
        """A chat within the budget keeps every message."""
        assert fit_to_budget(chat(("user", 3)), words, 10, model="m") == ([0], 3)

    def test_oldest_exchange_goes_first_system_stays(self) -> None:
        """The oldest user/assistant pair is dropped first; the system message is kept."""
        messages = chat(("system", 2), ("user", 4), ("assistant", 4), ("user", 3), ("assistant", 3), ("user", 2))
        assert fit_to_budget(messages, words, 12, model="m") == ([0, 3, 4, 5], 10)
        assert fit_to_budget(messages, words, 5, model="m") == ([0, 5], 4)

    def test_latest_message_too_long(self) -> None:
        """When the last message alone is over, the error gives the limit and the count."""
        messages = chat(("system", 2), ("user", 4), ("assistant", 4), ("user", 9))
        with pytest.raises(PipelineError, match=r"has 11 tokens; model m allows 8 \(after dropping 2") as err:
            fit_to_budget(messages, words, 8, model="m")
        assert err.value.code == "prompt_too_long"

    def test_lone_messages_and_long_histories(self) -> None:
        """Messages that are not user/assistant pairs go one by one; a long history needs only a few counts."""
        calls: list[int] = []

        def counting(messages: Sequence[ChatMessage]) -> int:
            calls.append(len(messages))
            return words(messages)

        messages = chat(("assistant", 5), *[("user", 1), ("assistant", 1)] * 500, ("user", 2))
        kept, tokens = fit_to_budget(messages, counting, 12, model="m")
        assert tokens == 12
        assert kept == list(range(len(messages) - 11, len(messages)))
        assert len(calls) < 20
