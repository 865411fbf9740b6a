"""Tracing through the real broker: one request is one trace with a span per stage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

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
from shared.messaging.service import StageService
from shared.messaging.settings import CoreSettings
from shared.stack.topics import ensure_topics
from tests.conftest import SMALL_MODEL, core_settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def traced(tansu: str, models_dir: Path) -> AsyncIterator[tuple[CoreSettings, InMemorySpanExporter]]:
    """The five services in this process on the real broker, all exporting spans to one in-memory exporter."""
    core = core_settings(tansu, prefix="traces.")
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


class TestTracing:
    async def test_one_trace_with_a_span_per_stage(self, traced: tuple[CoreSettings, InMemorySpanExporter]) -> None:
        """All process spans of one request share one trace id, one per stage input topic."""
        core, exporter = traced
        async with LlmopsClient(core) as client:
            answer = await client.ask("Say hi.", model=SMALL_MODEL, max_tokens=4)
        assert answer.error is None
        topics = core.topics
        inputs = {topics.requests, topics.preprocessed, topics.grounded, topics.checked, topics.generated}
        deadline = time.monotonic() + 10
        while True:
            spans = [s for s in exporter.get_finished_spans() if s.name.endswith(" process")]
            by_topic = {s.name.removesuffix(" process"): s for s in spans}
            if inputs <= by_topic.keys() or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert inputs <= by_topic.keys(), sorted(by_topic)
        trace_ids = {by_topic[t].context.trace_id for t in inputs}
        assert len(trace_ids) == 1
