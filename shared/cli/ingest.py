"""``llmops ingest``: files into the knowledge base, directly or through the running grounding service.

Qdrant local mode lets one process open its folder. When the embedded stack runs, grounding
holds it: the prepared chunks then go to grounding on the ingest topic and its progress comes
back on the ingest-progress topic. Otherwise (or with a Qdrant server) this process writes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from shared.knowledge.chunking import Chunker
from shared.knowledge.documents import UnsupportedDocumentError, find_documents
from shared.knowledge.ingest import IngestCommand, IngestProgress, IngestWriter, prepare
from shared.knowledge.settings import KnowledgeSettings
from shared.knowledge.store import KnowledgeStore, StoreUnavailableError
from shared.knowledge.tokens import TokenCounter
from shared.runtime.metadata import topic_partitions
from shared.runtime.producers import start_producer
from shared.runtime.security import client_security_kwargs
from shared.runtime.settings import CoreSettings
from shared.text.embedder import Embedder

__all__ = ["add_parser", "run_ingest"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``llmops ingest``."""
    ingest = sub.add_parser("ingest", help="add text, Markdown, HTML and PDF files (or folders) to the knowledge base")
    ingest.add_argument("paths", nargs="*", type=Path, help="files or folders (searched recursively)")
    ingest.add_argument("--tenant", default="default", help="whose knowledge base (default: default)")
    ingest.add_argument("--delete", action="append", default=[], metavar="SOURCE", help="remove a source's chunks")
    ingest.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the grounding service")


@dataclass
class _Totals:
    files: set[str] = field(default_factory=set)
    chunks: int = 0
    embedded: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, progress: IngestProgress) -> None:
        self.files.add(progress.source)
        self.chunks += progress.chunks
        self.embedded += progress.embedded
        self.removed += progress.removed
        if progress.error:
            self.errors.append(f"{progress.source}: {progress.error}")


def _store(core: CoreSettings, knowledge: KnowledgeSettings) -> KnowledgeStore:
    return knowledge.store(core.data_dir, timeout_s=30 if knowledge.url else None)


def _commands(args: argparse.Namespace, knowledge: KnowledgeSettings, job_id: str) -> list[IngestCommand]:
    commands = []
    for source in args.delete:
        path = Path(source)
        name = str(path.resolve()) if path.exists() else source
        commands.append(IngestCommand(job_id=job_id, tenant=args.tenant, action="delete", source=name))
    chunker = Chunker(max_tokens=knowledge.chunk_tokens, overlap=knowledge.chunk_overlap, counter=TokenCounter())
    for path in find_documents(args.paths):
        commands.extend(prepare(path, tenant=args.tenant, chunker=chunker, job_id=job_id))
    return commands


def _bar(total: int) -> tqdm:
    return tqdm(total=total, unit="chunk", desc="ingest", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def _write_directly(store: KnowledgeStore, commands: Iterable[IngestCommand], total: int, totals: _Totals) -> None:
    writer = IngestWriter(store, Embedder())
    with _bar(total) as bar:
        for command in commands:
            totals.add(writer.apply(command))
            bar.update(len(command.chunks))
            bar.set_postfix(files=len(totals.files), new=totals.embedded, removed=totals.removed)


async def _write_through_grounding(
    core: CoreSettings, commands: list[IngestCommand], total: int, totals: _Totals, timeout: float
) -> None:
    """Publish the commands on the ingest topic; wait for grounding's progress on every one."""
    kafka, topics = core.kafka, core.topics
    servers = kafka.bootstrap.split(",")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        **client_security_kwargs(kafka),
    )
    await consumer.start()
    producer = await start_producer(
        lambda idempotent: AIOKafkaProducer(
            bootstrap_servers=servers,
            acks="all" if kafka.acks == "all" else int(kafka.acks),
            enable_idempotence=idempotent,
            max_request_size=kafka.max_message_bytes,
            **client_security_kwargs(kafka),
        ),
        kafka,
    )
    try:
        partitions = await topic_partitions(consumer, topics.ingest_progress)
        if not partitions:
            msg = f"topic {topics.ingest_progress} does not exist: is the stack up (`llmops up`)?"
            raise RuntimeError(msg)
        tps = [TopicPartition(topics.ingest_progress, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        expected = {(c.source, c.part) for c in commands}
        for command in commands:  # keyed by source: the parts of one file stay in order
            await producer.send_and_wait(topics.ingest, command.model_dump_json().encode(), key=command.source.encode())
        job_id = commands[0].job_id
        last_progress = time.monotonic()
        with _bar(total) as bar:
            while expected:
                if time.monotonic() - last_progress > timeout:
                    raise TimeoutError
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        progress = IngestProgress.model_validate_json(record.value or b"{}")
                        if progress.job_id != job_id or (progress.source, progress.part) not in expected:
                            continue
                        expected.discard((progress.source, progress.part))
                        last_progress = time.monotonic()
                        totals.add(progress)
                        bar.update(progress.chunks)
                        bar.set_postfix(files=len(totals.files), new=totals.embedded, removed=totals.removed)
    finally:
        await producer.stop()
        await consumer.stop()


async def run_ingest(core: CoreSettings, args: argparse.Namespace) -> int:
    """Run ``llmops ingest``; returns the exit status."""
    if not args.paths and not args.delete:
        print("nothing to do: give files or folders, or --delete SOURCE", file=sys.stderr)  # noqa: T201
        return 2
    knowledge = KnowledgeSettings()
    job_id = uuid.uuid4().hex
    try:
        commands = await asyncio.to_thread(_commands, args, knowledge, job_id)
    except (FileNotFoundError, UnsupportedDocumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    total = sum(len(c.chunks) for c in commands)
    totals = _Totals()
    store = _store(core, knowledge)
    started = time.perf_counter()
    try:
        await asyncio.to_thread(store.warm_up)
    except StoreUnavailableError:
        if not store.local:
            raise
        # The folder is held, by the running grounding service: hand it the chunks.
        how = "through the grounding service"
        try:
            await _write_through_grounding(core, commands, total, totals, args.timeout)
        except TimeoutError:
            print(f"error: no progress from the grounding service for {args.timeout:.0f} s", file=sys.stderr)  # noqa: T201
            return 1
    else:
        how = "directly"
        try:
            await asyncio.to_thread(_write_directly, store, commands, total, totals)
        finally:
            await asyncio.to_thread(store.close)
    elapsed = time.perf_counter() - started
    rate = totals.chunks / elapsed if elapsed > 0 else 0.0
    print(  # noqa: T201
        f"{len(totals.files)} sources, {totals.chunks} chunks ({totals.embedded} new, {totals.removed} removed) "
        f"for tenant {args.tenant!r} in {elapsed:.1f} s ({rate:.0f} chunks/s), {how}"
    )
    for error in totals.errors:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201
    return 1 if totals.errors else 0
