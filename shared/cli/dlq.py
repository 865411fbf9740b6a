"""``llmops dlq list|show|replay``: inspect the dead-letter topic and re-inject fixed messages.

Every DLQ record keeps the raw bytes that failed and headers saying which stage refused
them, why, and where they came from (``llmops-source-topic/-partition/-offset``). Replay
publishes the original (or a corrected) value back to its source topic, so the stage that
refused it tries again; the new record carries ``llmops-replayed-from`` for the audit.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.runtime.metadata import topic_partitions
from shared.runtime.security import client_security_kwargs
from shared.runtime.settings import CoreSettings

__all__ = ["DlqRecord", "add_parser", "read_dlq", "replay", "run"]

_PREVIEW = 60


@dataclass(frozen=True)
class DlqRecord:
    """One dead-lettered message."""

    partition: int
    offset: int
    value: bytes
    headers: dict[str, str]

    @property
    def ref(self) -> str:
        """``partition:offset``, how the commands name a record."""
        return f"{self.partition}:{self.offset}"

    def summary(self) -> dict[str, object]:
        """The fields ``list`` shows."""
        h = self.headers
        return {
            "ref": self.ref,
            "stage": h.get("llmops-stage", ""),
            "code": h.get("llmops-error-code", ""),
            "request_id": h.get("request_id", ""),
            "source": f"{h.get('llmops-source-topic', '')}[{h.get('llmops-source-partition', '')}]"
            f"@{h.get('llmops-source-offset', '')}",
            "bytes": len(self.value),
            "error": h.get("llmops-error", "")[:_PREVIEW],
        }


async def read_dlq(core: CoreSettings, *, timeout_s: float = 5.0) -> list[DlqRecord]:
    """Every record now on the DLQ topic, oldest first per partition (read without a consumer group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=core.kafka.bootstrap,
        fetch_max_wait_ms=core.kafka.fetch_max_wait_ms,
        enable_auto_commit=False,
        **client_security_kwargs(core.kafka),
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, core.topics.dlq)
        tps = [TopicPartition(core.topics.dlq, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[DlqRecord] = []
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=int(timeout_s * 1000))
            if not batch:
                break  # nothing more arrived in time: report what was read
            for tp, messages in batch.items():
                for msg in messages:
                    headers = {k: v.decode("utf-8", "replace") for k, v in msg.headers or ()}
                    records.append(DlqRecord(msg.partition, msg.offset, msg.value or b"", headers))
                    if msg.offset + 1 >= ends[tp]:
                        pending.discard(tp)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def _find(records: list[DlqRecord], ref: str) -> DlqRecord:
    for record in records:
        if record.ref == ref:
            return record
    msg = f"no DLQ record {ref} (see `llmops dlq list`)"
    raise SystemExit(msg)


async def replay(core: CoreSettings, record: DlqRecord, *, value: bytes | None = None, topic: str | None = None) -> str:
    """Publish ``value`` (the original bytes when None) to ``topic`` (the record's source when None)."""
    target = topic or record.headers.get("llmops-source-topic") or core.topics.requests
    producer = AIOKafkaProducer(
        bootstrap_servers=core.kafka.bootstrap, acks="all", **client_security_kwargs(core.kafka)
    )
    await producer.start()
    try:
        headers = [("llmops-replayed-from", f"{core.topics.dlq}:{record.ref}".encode())]
        if "request_id" in record.headers:
            headers.append(("request_id", record.headers["request_id"].encode()))
        await producer.send_and_wait(target, value if value is not None else record.value, headers=headers)
    finally:
        await producer.stop()
    return target


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``llmops dlq``."""
    dlq = sub.add_parser("dlq", help="list, show or replay dead-lettered messages")
    dlq.add_argument("action", choices=["list", "show", "replay"])
    dlq.add_argument("ref", nargs="?", help="PARTITION:OFFSET of a record (show, replay)")
    dlq.add_argument("--json", action="store_true", help="list as JSON lines")
    dlq.add_argument("--stage", help="list only records refused by this stage")
    dlq.add_argument("--file", type=Path, help="replay: send this file's bytes instead of the original")
    dlq.add_argument("--topic", help="replay: send to this topic instead of the source topic")


async def run(core: CoreSettings, args: argparse.Namespace) -> int:
    """Carry out ``llmops dlq ...``."""
    records = await read_dlq(core)
    if args.action == "list":
        shown = [r for r in records if not args.stage or r.headers.get("llmops-stage") == args.stage]
        for record in shown:
            row = record.summary()
            print(json.dumps(row) if args.json else "  ".join(str(v) for v in row.values()))  # noqa: T201
        if not args.json:
            print(f"{len(shown)} record(s) on {core.topics.dlq}")  # noqa: T201
        return 0
    if not args.ref:
        msg = f"`llmops dlq {args.action}` needs PARTITION:OFFSET"
        raise SystemExit(msg)
    record = _find(records, args.ref)
    if args.action == "show":
        print(json.dumps(record.headers, indent=2))  # noqa: T201
        try:
            print(json.dumps(json.loads(record.value), indent=2, ensure_ascii=False))  # noqa: T201
        except (ValueError, UnicodeDecodeError):
            print(repr(record.value[:2000]))  # noqa: T201
        return 0
    value = args.file.read_bytes() if args.file else None
    target = await replay(core, record, value=value, topic=args.topic)
    print(f"replayed {record.ref} to {target}")  # noqa: T201
    return 0
