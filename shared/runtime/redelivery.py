"""At least once: which records a partition's previous owner may already have handled (issue 23, finding 9).

A replica that gets a partition (after a rebalance, a crash, a restart) reads it from the committed
offset. Its previous owner commits after each batch, so it can have handled at most one batch past
that offset without committing: those records were perhaps answered already, and come again. A stage
whose decision depends on its own replica's state must not contradict the first outcome there.
Preprocess's quota is the case: the previous owner admitted the request, and a replica that has not
seen it yet (its usage record comes only when it is answered) would refuse it with a 429 that reaches
the client before the real answer.

``RedeliveryWindow`` is the consumer's rebalance listener (around the stage's own, if any); it marks
the first ``window`` records of each partition read since it was assigned (``maybe_redelivered``),
those among them written before the assignment (a record the previous owner read was). So a
stage started fresh marks nothing its clients send from then on; a client backdating its records
gets at most ``window`` records per partition and rebalance marked.
With exactly-once on there is no such window: a record comes again only when its outputs were
aborted, so nobody saw them, and nothing is marked.

Example:
    >>> window = RedeliveryWindow(2)
    >>> await window.on_partitions_assigned({TopicPartition("t", 0)})
    >>> [window.mark(r).maybe_redelivered for r in records_at_offsets(10, 11, 12)]
    [True, True, False]
    >>> await window.on_partitions_assigned({TopicPartition("t", 0)})  # kept: no new window
    >>> window.mark(record_at_offset(13)).maybe_redelivered
    False

"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition

from shared.runtime.records import ReceivedRecord

__all__ = ["RedeliveryWindow"]


class RedeliveryWindow(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Marks the records a partition's previous owner may have handled; passes rebalances on to ``inner``.

    ``window``: how many records past the committed offset a replica handles before committing (a batch).
    """

    def __init__(self, window: int, inner: Any = None) -> None:
        self.window = window
        self.inner = inner
        #: When each partition held was assigned (ms since the epoch).
        self._assigned_ms: dict[tuple[str, int], float] = {}
        #: The first offset read from each partition since it was assigned (absent: none read yet).
        self._start: dict[tuple[str, int], int] = {}

    def around(self, inner: Any) -> RedeliveryWindow:
        """Be the consumer's listener, passing rebalances on to ``inner`` (the delivery's own); returns the window."""
        self.inner = inner
        return self

    def mark(self, record: ReceivedRecord) -> ReceivedRecord:
        """``record``, marked ``maybe_redelivered`` when among its partition's first since assignment and older."""
        key = (record.topic, record.partition)
        assigned_ms = self._assigned_ms.get(key)
        if assigned_ms is None or not self.window:
            return record  # not assigned through this listener (a manual assignment, a test): nothing to go by
        start = self._start.setdefault(key, record.offset)
        written_before = record.timestamp_ms is None or record.timestamp_ms < assigned_ms
        if start <= record.offset < start + self.window and written_before:
            return dataclasses.replace(record, maybe_redelivered=True)
        return record

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Pass the revocation on (the stage's listener commits or waits there)."""
        if self.inner is not None:
            await self.inner.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """A partition new to this replica starts a window at its first record; one it kept goes on as it was.

        (aiokafka's rebalances revoke every partition and assign them again: a partition kept had no other
        owner in between, and this replica's own state already holds what it handled.)
        """
        now_ms = time.time() * 1000
        held = {(tp.topic, tp.partition) for tp in assigned}
        for key in set(self._assigned_ms) - held:
            del self._assigned_ms[key]
            self._start.pop(key, None)
        for key in held - set(self._assigned_ms):
            self._assigned_ms[key] = now_ms
        if self.inner is not None:
            await self.inner.on_partitions_assigned(assigned)
