import asyncio

from aiokafka import TopicPartition

from shared.runtime.inflight import ConcurrentRecords, OffsetTracker
from shared.runtime.runner import ReceivedRecord

TP = TopicPartition("llmops.checked", 0)
OTHER = TopicPartition("llmops.checked", 1)


class TestOffsetTracker:
    def test_commits_only_up_to_the_lowest_unfinished_record(self) -> None:
        tracker = OffsetTracker()
        for offset in (5, 6, 7):
            tracker.start(TP, offset)
        tracker.finish(TP, 6)
        tracker.finish(TP, 7)
        assert tracker.committable() == {TP: 5}  # 5 still runs: 6 and 7 are read again after a crash
        tracker.committed({TP: 5})
        assert tracker.committable() == {}
        tracker.finish(TP, 5)
        assert tracker.committable() == {TP: 8}

    def test_partitions_are_apart(self) -> None:
        tracker = OffsetTracker()
        tracker.start(TP, 1)
        tracker.start(OTHER, 10)
        tracker.finish(OTHER, 10)
        assert tracker.committable() == {TP: 1, OTHER: 11}
        assert (tracker.in_flight(TP), tracker.in_flight(OTHER), tracker.in_flight()) == (1, 0, 1)

    def test_a_forgotten_partition_is_not_committed(self) -> None:
        tracker = OffsetTracker()
        tracker.start(TP, 3)
        tracker.forget({TP})
        tracker.finish(TP, 3)  # finished after the partition went to another replica
        assert tracker.committable() == {}


class Consumer:
    """Records what ConcurrentRecords commits (its only call on the consumer)."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


def record(offset: int, key: bytes, partition: int = 0) -> ReceivedRecord:
    return ReceivedRecord(topic=TP.topic, partition=partition, offset=offset, key=key)


class TestConcurrentRecords:
    async def test_a_later_record_does_not_wait_for_an_earlier_one(self) -> None:
        """Slots free: a short record admitted after a long one finishes first; the commit waits for the long one."""
        release = asyncio.Event()
        finished: list[int] = []

        async def handle(body: bytes, rec: ReceivedRecord) -> str:
            if body == b"long":
                await release.wait()
            finished.append(rec.offset)
            return "ok"

        consumer = Consumer()
        records = ConcurrentRecords(4, handle=handle)
        await records.admit(consumer, b"long", record(0, b"a"))
        await records.admit(consumer, b"short", record(1, b"b"))
        await asyncio.sleep(0.05)
        assert finished == [1]
        assert consumer.commits == [{TP: 0}]  # the lowest unfinished: nothing past the long record
        release.set()
        await records.drain(timeout=5)
        assert finished == [1, 0]
        assert consumer.commits[-1] == {TP: 2}
        assert records.peak == 2

    async def test_one_key_in_order_and_a_full_house_waits(self) -> None:
        """Records of one conversation run one after another; admit blocks while every slot is busy."""
        order: list[int] = []
        gate = asyncio.Event()

        async def handle(body: bytes, rec: ReceivedRecord) -> str:
            await gate.wait()
            order.append(rec.offset)
            return "ok"

        records = ConcurrentRecords(2, handle=handle)
        consumer = Consumer()
        await records.admit(consumer, b"", record(0, b"same"))
        await records.admit(consumer, b"", record(1, b"same"))
        third = asyncio.create_task(records.admit(consumer, b"", record(2, b"other")))
        await asyncio.sleep(0.05)
        assert not third.done()  # two slots, both taken
        gate.set()
        await third
        await records.drain(timeout=5)
        assert order.index(0) < order.index(1)
        assert consumer.commits[-1] == {TP: 3}

    async def test_a_failed_publish_is_tried_again(self) -> None:
        calls = 0

        async def handle(body: bytes, rec: ReceivedRecord) -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("broker away")
            return "ok"

        consumer = Consumer()
        records = ConcurrentRecords(1, handle=handle)
        await records.admit(consumer, b"", record(7, b"k"))
        await records.drain(timeout=10)
        assert calls == 2
        assert consumer.commits[-1] == {TP: 8}

    async def test_after_drain_nothing_starts(self) -> None:
        async def handle(body: bytes, rec: ReceivedRecord) -> str:
            return "ok"

        consumer = Consumer()
        records = ConcurrentRecords(1, handle=handle)
        await records.drain(timeout=1)
        await records.admit(consumer, b"", record(0, b"k"))
        assert records.tracker.in_flight() == 0
        assert consumer.commits == []

    async def test_a_failed_commit_is_carried_by_the_next(self) -> None:
        class Flaky(Consumer):
            async def commit(self, offsets: dict[TopicPartition, int]) -> None:
                if not self.commits:
                    self.commits.append({})
                    raise ConnectionError("rebalance under way")
                await super().commit(offsets)

        async def handle(body: bytes, rec: ReceivedRecord) -> str:
            return "ok"

        consumer = Flaky()
        records = ConcurrentRecords(2, handle=handle)
        await records.admit(consumer, b"", record(0, b"a"))
        await asyncio.sleep(0.05)
        await records.admit(consumer, b"", record(1, b"b"))
        await records.drain(timeout=5)
        assert consumer.commits[-1] == {TP: 2}
