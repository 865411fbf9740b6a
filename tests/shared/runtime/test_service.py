"""Tests for the service wiring helpers that do not need a broker."""

from __future__ import annotations

import time
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from shared.contracts.envelope import Envelope
from shared.contracts.stage import Delivery, Output, Outputs, SideHandler, Stage, StageContext
from shared.contracts.topology import Role
from shared.contracts.turn import Turn
from shared.knowledge.ingest import IngestCommand, IngestProgress
from shared.runtime.broker import consumer_options
from shared.runtime.service import StageService, poll_without_idle_sleep
from shared.runtime.settings import KafkaSettings, StageSettings
from tests.conftest import capture, make_envelope


class _Consumer:
    """Answers ``getmany`` like aiokafka: records by partition, or nothing after the timeout."""

    def __init__(self, batches: list[dict[str, list[int]]]) -> None:
        self.batches = batches
        self.calls: list[tuple[int, int | None]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[int]]:
        self.calls.append((timeout_ms, max_records))
        return self.batches.pop(0) if self.batches else {}


class TestBatchPolling:
    async def test_empty_poll_returns_at_once_and_records_are_flattened(self) -> None:
        """No sleep after an empty poll (FastStream's default sleeps batch_timeout_ms); records in partition order."""
        broker = KafkaBroker("127.0.0.1:9")
        subscriber: Any = broker.subscriber("t", batch=True, max_records=32, batch_timeout_ms=500)
        poll_without_idle_sleep(subscriber, poll_ms=50)
        consumer = _Consumer([{}, {"p0": [1, 2], "p1": [3]}])
        t0 = time.perf_counter()
        assert await subscriber.get_msg(consumer) == ()
        assert time.perf_counter() - t0 < 0.1  # the 500 ms sleep is gone
        assert await subscriber.get_msg(consumer) == (1, 2, 3)
        assert consumer.calls == [(50, 32), (50, 32)]


class TestConsumerOptions:
    def test_side_consumers_poll_less_often(self) -> None:
        """Consumers off the request path use the side fetch wait; the request path keeps the short one."""
        kafka = KafkaSettings(fetch_max_wait_ms=5, side_fetch_max_wait_ms=100)
        assert consumer_options(kafka)["fetch_max_wait_ms"] == 5
        assert consumer_options(kafka, request_path=False)["fetch_max_wait_ms"] == 100


class _Grounding(Stage):
    """A demo grounding stage: echoes envelopes, remembers turns, answers ingest commands with progress."""

    name = "grounding"

    def __init__(self, *, delivery: Delivery | None = None, handlers: list[str] | None = None) -> None:
        self.delivery = delivery or Delivery()
        self.handlers = handlers if handlers is not None else ["turns", "ingest"]
        self.turns: list[Turn] = []
        self.warmed = False
        self.batches: list[int] = []

    async def warm_up(self, context: StageContext) -> None:
        self.warmed = True

    async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
        self.batches.append(len(batch))
        return [[Output.of(Role.GROUNDED, env)] for env in batch]

    def side_handlers(self) -> list[SideHandler]:
        every = {
            "turns": SideHandler(Role.TURNS, Turn, self.on_turn, what="turn"),
            "ingest": SideHandler(Role.INGEST, IngestCommand, self.on_ingest, what="ingest command"),
            "cache": SideHandler(Role.CACHE, Turn, self.on_turn, what="cache entry"),
        }
        return [every[name] for name in self.handlers]

    async def on_turn(self, turn: Turn) -> Outputs:
        self.turns.append(turn)
        return []

    async def on_ingest(self, command: IngestCommand) -> Outputs:
        progress = IngestProgress(job_id=command.job_id, source=command.source, part=0, parts=1, chunks=0)
        return [Output.record(Role.INGEST_PROGRESS, progress, key=command.job_id)]


class TestStageService:
    """The service wires a stage from the topology: input topic and group, side inputs, delivery."""

    def test_subscribes_what_the_topology_declares(self) -> None:
        """Grounding's group reads its input; turns are read without a group, ingest in a group of its own."""
        service = StageService(_Grounding(), StageSettings())
        subscriptions = {tuple(sub.topic_names): sub.group_id for sub in service.broker.subscribers}
        assert subscriptions == {
            ("llmops.preprocessed",): "llmops-grounding",
            ("llmops.turns",): None,
            ("llmops.ingest",): "llmops-grounding-ingest",
        }

    def test_a_side_handler_the_topology_does_not_declare_is_refused(self) -> None:
        """Grounding handling the cache topic fails at construction, naming the role."""
        with pytest.raises(ValueError, match="does not declare: cache"):
            StageService(_Grounding(handlers=["turns", "cache"]), StageSettings())

    async def test_input_and_side_inputs_end_to_end_on_the_test_broker(self) -> None:
        """An input is echoed to grounded, a turn reaches the stage, an ingest command is answered with progress."""
        stage = _Grounding(delivery=Delivery("batch", 8, 5))
        service = StageService(stage, StageSettings())
        out = capture(service.broker, "llmops.grounded", "llmops.ingest-progress", "llmops.dlq")
        await service.warm_up()
        assert stage.warmed
        turn = Turn(request_id="r", conversation_id="c", tenant="default", user="hi", assistant="hello")
        command = IngestCommand(job_id="j-1", tenant="default", source="doc.md")
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(make_envelope().to_bytes(), "llmops.preprocessed")
            await broker.publish(turn.model_dump_json().encode(), "llmops.turns")
            await broker.publish(command.model_dump_json().encode(), "llmops.ingest")
            await broker.publish(b"not a turn", "llmops.turns")
        assert len(out["llmops.grounded"]) == 1
        assert stage.batches == [1]
        assert stage.turns == [turn]
        assert IngestProgress.model_validate_json(out["llmops.ingest-progress"][0]).job_id == "j-1"
        assert len(out["llmops.dlq"]) == 1  # the invalid turn
