"""Tests for the memo of retrieved chunks' context-check findings."""

from __future__ import annotations

from services.safety.context_memo import ContextMemo
from shared.guards.findings import GuardFinding

FINDING = GuardFinding(check="injection", type="context", start=0, end=5, score=0.9, action="block")


class TestContextMemo:
    def test_unknown_text_is_none(self) -> None:
        """A chunk never checked has no entry."""
        assert ContextMemo().get("default", "a chunk") is None

    def test_findings_come_back_per_policy(self) -> None:
        """Findings are kept under the policy they were found with, and only there."""
        memo = ContextMemo()
        memo.put("default", "a chunk", (FINDING,))
        memo.put("default", "a clean chunk", ())
        assert memo.get("default", "a chunk") == (FINDING,)
        assert memo.get("default", "a clean chunk") == ()
        assert memo.get("clinic", "a chunk") is None
        assert (memo.hits, memo.misses) == (2, 1)

    def test_least_recently_used_goes_first(self) -> None:
        """When full, the entry used longest ago is dropped."""
        memo = ContextMemo(max_entries=2)
        memo.put("default", "one", ())
        memo.put("default", "two", ())
        assert memo.get("default", "one") == ()
        memo.put("default", "three", ())
        assert len(memo) == 2
        assert memo.get("default", "two") is None
        assert memo.get("default", "one") == ()

    def test_zero_entries_keeps_nothing(self) -> None:
        """``max_entries=0`` turns the memo off."""
        memo = ContextMemo(max_entries=0)
        memo.put("default", "one", (FINDING,))
        assert memo.get("default", "one") is None
        assert len(memo) == 0
