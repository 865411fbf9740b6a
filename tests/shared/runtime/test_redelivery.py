import time

from aiokafka import TopicPartition

from shared.runtime.records import ReceivedRecord
from shared.runtime.redelivery import RedeliveryWindow

TP = TopicPartition("llmops.requests", 0)


def at(offset: int, *, partition: int = 0, written_ms: float | None = None) -> ReceivedRecord:
    stamp = int(written_ms if written_ms is not None else time.time() * 1000 - 60_000)
    return ReceivedRecord(topic=TP.topic, partition=partition, offset=offset, key=None, timestamp_ms=stamp)


def marks(window: RedeliveryWindow, *records: ReceivedRecord) -> list[bool]:
    return [window.mark(record).maybe_redelivered for record in records]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TopicPartition]]] = []

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.calls.append(("revoked", revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.calls.append(("assigned", assigned))


class TestRedeliveryWindow:
    async def test_the_first_records_after_an_assignment_are_marked(self) -> None:
        """Those a previous owner can have handled past the committed offset (one batch) are marked."""
        window = RedeliveryWindow(2)
        await window.on_partitions_assigned({TP})
        assert marks(window, at(10), at(11), at(12), at(13)) == [True, True, False, False]

    async def test_records_written_after_the_assignment_are_not_marked(self) -> None:
        """No owner before this one can have read a record written after it got the partition."""
        window = RedeliveryWindow(5)
        await window.on_partitions_assigned({TP})
        assert marks(window, at(0, written_ms=time.time() * 1000 + 1000)) == [False]

    async def test_a_kept_partition_starts_no_new_window_a_regained_one_does(self) -> None:
        """A rebalance that leaves the partition here marks nothing; losing it and getting it back does."""
        window = RedeliveryWindow(1)
        await window.on_partitions_assigned({TP})
        assert marks(window, at(0), at(1)) == [True, False]
        await window.on_partitions_revoked({TP})
        await window.on_partitions_assigned({TP})
        assert marks(window, at(2)) == [False]
        await window.on_partitions_revoked({TP})
        await window.on_partitions_assigned(set())
        await window.on_partitions_assigned({TP})
        assert marks(window, at(1, written_ms=time.time() * 1000 - 10)) == [True]

    async def test_partitions_have_windows_of_their_own(self) -> None:
        window = RedeliveryWindow(1)
        await window.on_partitions_assigned({TP, TopicPartition(TP.topic, 1)})
        assert marks(window, at(5), at(6), at(7, partition=1)) == [True, False, True]

    def test_nothing_is_marked_without_an_assignment_or_with_exactly_once(self) -> None:
        assert marks(RedeliveryWindow(3), at(0)) == [False]

    async def test_exactly_once_marks_nothing(self) -> None:
        """A window of 0: a record comes again only when its outputs were aborted (nobody saw them)."""
        window = RedeliveryWindow(0)
        await window.on_partitions_assigned({TP})
        assert marks(window, at(0)) == [False]

    async def test_rebalances_are_passed_on_to_the_delivery_listener(self) -> None:
        inner = Recorder()
        window = RedeliveryWindow(1, inner)
        await window.on_partitions_assigned({TP})
        await window.on_partitions_revoked({TP})
        assert inner.calls == [("assigned", {TP}), ("revoked", {TP})]
