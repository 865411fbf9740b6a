"""What the context checks found in recently retrieved chunks, by the chunk's text.

The same chunks come back for request after request (a knowledge base's popular pages), and
checking one is most of safety's time when a request is grounded: MiniLM over the chunk, then
the injection classifier (about 10 ms of CPU per chunk). The checks are deterministic for a
given text under a given policy, and a process's policy is fixed once loaded, so a chunk's
findings are kept, per policy, and reused. Only check names, types, spans and scores are kept,
never the text: the key is a hash of it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from shared.guards.findings import GuardFinding

__all__ = ["ContextMemo"]


class ContextMemo:
    """A bounded, least-recently-used map from (policy, chunk text) to the context checks' findings.

    ``max_entries=0`` keeps nothing (every chunk is checked every time).

    Example:
        >>> memo = ContextMemo(max_entries=4096)
        >>> memo.get("default", chunk_text) is None
        True
        >>> memo.put("default", chunk_text, findings)
        >>> memo.get("default", chunk_text) == findings
        True

    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, bytes], tuple[GuardFinding, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(policy: str, text: str) -> tuple[str, bytes]:
        return policy, hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()

    def get(self, policy: str, text: str) -> tuple[GuardFinding, ...] | None:
        """The findings ``text`` got under ``policy``, if it was checked recently."""
        key = self._key(policy, text)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, policy: str, text: str, findings: tuple[GuardFinding, ...]) -> None:
        """Remember what ``text`` got under ``policy``; the least recently used entry goes when full."""
        if self.max_entries <= 0:
            return
        key = self._key(policy, text)
        with self._lock:
            self._entries[key] = findings
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
