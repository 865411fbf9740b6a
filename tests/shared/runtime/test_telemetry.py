"""Tracing through the real broker: one request is one trace with a span per stage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.grounding.app import create_service as create_grounding
from services.grounding.settings import GroundingSettings
from services.inference.app import create_service as create_inference
from services.inference.settings import InferenceSettings
from services.postprocess.app import create_service as create_postprocess
from services.postprocess.settings import PostprocessSettings
from services.preprocess.app import create_service as create_preprocess
from services.preprocess.settings import PreprocessSettings
from services.safety.app import create_service as create_safety
from services.safety.settings import SafetySettings
from shared.client.sdk import LlmopsClient
from shared.runtime.records import ReceivedRecord
from shared.runtime.service import StageService
from shared.runtime.settings import CoreSettings
from shared.runtime.telemetry import RecordSpans
from shared.stack.topics import ensure_topics
from tests.conftest import SMALL_MODEL, core_settings


@pytest.fixture(scope="module")
async def traced(kafka: str, models_dir: Path) -> AsyncIterator[tuple[CoreSettings, InMemorySpanExporter]]:
    """The five services in this process on the real broker, all exporting spans to one in-memory exporter."""
    core = core_settings(kafka, prefix="traces.")
    await ensure_topics(core.kafka, core.topics.all())
    exporter = InMemorySpanExporter()
    services: list[StageService] = [
        create_preprocess(PreprocessSettings(core=core)),
        create_grounding(GroundingSettings(core=core)),
        create_safety(SafetySettings(core=core)),
        create_inference(InferenceSettings(core=core, model=SMALL_MODEL)),
        create_postprocess(PostprocessSettings(core=core)),
    ]
    for service in services:
        service.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        await service.warm_up()
        await service.broker.start()
    yield core, exporter
    for service in services:
        await service.broker.stop()
        await service._after_shutdown()


def complete_traces(exporter: InMemorySpanExporter, inputs: set[str]) -> dict[int, set[str]]:
    """Trace id → the input topics it has a ``<topic> process`` span of, for the traces that have them all."""
    topics_by_trace: dict[int, set[str]] = {}
    for span in exporter.get_finished_spans():
        if span.name.endswith(" process") and span.context is not None:
            topics_by_trace.setdefault(span.context.trace_id, set()).add(span.name.removesuffix(" process"))
    return {trace: topics for trace, topics in topics_by_trace.items() if inputs <= topics}


async def wait_for_traces(exporter: InMemorySpanExporter, inputs: set[str], count: int) -> dict[int, set[str]]:
    """The complete traces once ``count`` of them are there (or 10 s passed)."""
    deadline = time.monotonic() + 10
    while True:
        found = complete_traces(exporter, inputs)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


@pytest.mark.e2e
class TestTracing:
    async def test_one_trace_with_a_span_per_stage(self, traced: tuple[CoreSettings, InMemorySpanExporter]) -> None:
        """One request is one trace with a process span per stage input topic (batch stages included)."""
        core, exporter = traced
        exporter.clear()
        async with LlmopsClient(core) as client:
            answer = await client.ask("Say hi.", model=SMALL_MODEL, max_tokens=4)
        assert answer.error is None
        topics = core.topics
        inputs = {topics.requests, topics.preprocessed, topics.grounded, topics.checked, topics.generated}
        assert len(await wait_for_traces(exporter, inputs, 1)) == 1

    async def test_requests_batched_together_keep_their_own_traces(
        self, traced: tuple[CoreSettings, InMemorySpanExporter]
    ) -> None:
        """Requests sent at once (consumed in one batch by preprocess and safety) are one trace each."""
        core, exporter = traced
        exporter.clear()
        async with LlmopsClient(core) as client:
            answers = await asyncio.gather(
                *(client.ask(f"Say {word}.", model=SMALL_MODEL, max_tokens=2) for word in ("hi", "yes", "no"))
            )
        assert all(a.error is None for a in answers)
        topics = core.topics
        inputs = {topics.requests, topics.preprocessed, topics.grounded, topics.checked, topics.generated}
        assert len(await wait_for_traces(exporter, inputs, 3)) == 3


class TestRecordSpans:
    def test_a_record_span_continues_the_records_trace(self) -> None:
        """The span's parent is the record's traceparent; outputs published in it carry the same trace."""
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        rec = ReceivedRecord(
            topic="llmops.grounded", partition=1, offset=9, key=b"c", headers=(("traceparent", parent.encode()),)
        )
        started = datetime.now(UTC) - timedelta(milliseconds=5)
        with RecordSpans(provider).scope(rec, started):
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier)
        [span] = exporter.get_finished_spans()
        assert span.name == "llmops.grounded process"
        assert span.context is not None
        assert span.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
        assert span.parent is not None
        assert span.parent.span_id == 0x00F067AA0BA902B7
        assert span.start_time == int(started.timestamp() * 1e9)
        assert span.attributes is not None
        assert span.attributes["messaging.kafka.message.offset"] == 9
        assert carrier["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"

    def test_a_record_without_a_trace_starts_its_own(self) -> None:
        """No traceparent (a client without tracing): each record is the root of a new trace."""
        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        spans = RecordSpans(provider)
        for offset in (1, 2):
            with spans.scope(ReceivedRecord(topic="t", partition=0, offset=offset, key=None), datetime.now(UTC)):
                pass
        first, second = exporter.get_finished_spans()
        assert first.parent is None
        assert second.parent is None
        assert first.context is not None
        assert second.context is not None
        assert first.context.trace_id != second.context.trace_id
