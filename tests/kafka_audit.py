"""Kafka helpers of the hostile-client tests (issue 23): the hostile records, and audits of offsets and topics."""

from __future__ import annotations

import asyncio
import json

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def collect(consumer: AIOKafkaConsumer, count: int, seconds: float) -> list[bytes]:
    """The values of the next ``count`` records (fewer if ``seconds`` pass first)."""
    found: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while len(found) < count and loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        found += [r.value for records in batches.values() for r in records if r.value is not None]
    return found


def hostile_records(prefix: str) -> list[tuple[str, bytes]]:
    """(what, raw) for each kind of hostile record issue 23 found, as a client's producer could write them."""
    user = [{"role": "user", "content": "hi"}]
    return [
        ("deep", b'{"request_id": "h-deep", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        ("garbage", b"\xff\xfe not json"),
        ("forged-cache", json.dumps({"request_id": "h-cache", "request": {"messages": user}, "cache": {"key": "k"}}).encode()),
        ("forged-kind", json.dumps({"request_id": "h-kind", "request": {"messages": user}, "kind": "final"}).encode()),
        ("internal-reply", json.dumps({"request_id": "h-loop", "messages": user, "reply_to": f"{prefix}preprocessed"}).encode()),
        ("poison-internal-reply", json.dumps({"request_id": "h-ploop", "reply_to": f"{prefix}grounded", "request": 1}).encode()),
        ("other-tenant-reply", json.dumps({"request_id": "h-other", "messages": user, "tenant": "acme", "reply_to": f"{prefix}responses.globex"}).encode()),
        ("unknown-topic-reply", json.dumps({"request_id": "h-gone", "messages": user, "reply_to": "nowhere.at.all"}).encode()),
    ]  # fmt: skip


async def committed_positions(
    kafka: str, group: str, topic: str, partitions: int
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """The group's committed offsets on ``topic`` once they reach its end (or after 20 s), and the end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        positions: dict[TopicPartition, int] = {}
        for _ in range(100):
            positions = {tp: await consumer.committed(tp) or 0 for tp in tps}
            if positions == ends:
                break
            await asyncio.sleep(0.2)
        return positions, ends
    finally:
        await consumer.stop()


async def written_topics(kafka: str, prefix: str, allowed: set[str]) -> set[str]:
    """The topics under ``prefix`` (or created since) outside ``allowed`` that hold any record."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka)
    await admin.start()
    await consumer.start()
    try:
        written = set()
        for topic in set(await admin.list_topics()) - allowed:
            if not topic.startswith(prefix) and topic != "nowhere.at.all":
                continue
            parts = ((await consumer.topics()) and consumer.partitions_for_topic(topic)) or set()
            offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
            if any(offsets.values()):
                written.add(topic)
        return written
    finally:
        await consumer.stop()
        await admin.close()
