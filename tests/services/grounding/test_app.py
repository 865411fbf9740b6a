from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr

from services.grounding.app import create_service
from services.grounding.settings import GroundingSettings
from services.grounding.stage import open_store
from shared.contracts.envelope import ChatMessage, Envelope, Prepared
from shared.contracts.turn import Turn
from shared.knowledge.ingest import ChunkText, IngestCommand, IngestProgress
from shared.knowledge.settings import KnowledgeSettings
from shared.runtime.secrets import DefaultSecretError
from shared.runtime.settings import CoreSettings
from tests.conftest import capture, make_envelope


def settings(tmp_path: Path) -> GroundingSettings:
    return GroundingSettings(knowledge=KnowledgeSettings(path=tmp_path / "qdrant"), entities=False)


def prepared(text: str, conversation: str) -> Envelope:
    env = make_envelope(text, conversation_id=conversation)
    env.prepared = Prepared(
        messages=[ChatMessage(role="user", content=text)], text=text, model="m", token_count=3, token_budget=2000
    )
    return env


class TestGroundingService:
    @staticmethod
    async def after_turns(tmp_path: Path, *records: bytes) -> tuple[list[str], list[bytes]]:
        """The next request's grounded messages (after the system one) once ``records`` were on the turns
        topic of conversation c1, and what went to the DLQ."""
        service = create_service(settings(tmp_path))
        topics = service.settings.core.topics
        out = capture(service.broker, topics.grounded, topics.dlq)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            for record in records:
                await broker.publish(record, topics.turns, key=b"c1")
            await broker.publish(prepared("And now?", "c1").to_bytes(), topics.preprocessed, key=b"c1")
        [raw] = out[topics.grounded]
        grounding = Envelope.from_bytes(raw).grounding
        assert grounding is not None
        return [m.content for m in grounding.messages[1:]], out[topics.dlq]

    async def test_turns_feed_memory_of_the_next_request(self, tmp_path: Path) -> None:
        """A turn on the turns topic shows up in the next request of that conversation."""
        turn = Turn(request_id="r0", conversation_id="c1", tenant="default", user="Hi", assistant="Hello!")
        messages, dead = await self.after_turns(tmp_path, turn.model_dump_json().encode(), b"not a turn")
        assert messages == ["Hi", "Hello!", "And now?"]
        assert dead == [b"not a turn"]

    async def test_a_retracted_turn_leaves_memory(self, tmp_path: Path) -> None:
        """Issue 23: a turn whose answer could not be sent is taken back; the next request does not see it."""
        kept = Turn(request_id="r0", conversation_id="c1", tenant="default", user="Hi", assistant="Hello!")
        lost = Turn(request_id="r1", conversation_id="c1", tenant="default", user="Why?", assistant="Because.")
        records = [t.model_dump_json().encode() for t in (kept, lost, lost.retraction())]
        messages, dead = await self.after_turns(tmp_path, *records)
        assert messages == ["Hi", "Hello!", "And now?"]
        assert dead == []

    async def test_ingest_topic_writes_the_store_and_reports_progress(self, tmp_path: Path) -> None:
        """Chunks sent on the ingest topic are stored, reported, and retrieved for the next request."""
        service = create_service(settings(tmp_path))
        topics = service.settings.core.topics
        out = capture(service.broker, topics.grounded, topics.ingest_progress, topics.dlq)
        await service.warm_up()
        command = IngestCommand(
            job_id="j1",
            tenant="default",
            source="/kb/zephyr.md",
            title="Zephyr",
            file_hash="h1",
            chunks=[ChunkText(text="The Zephyr-9 reactor was commissioned by Halvorsen Labs.", position=0)],
        )
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(command.model_dump_json().encode(), topics.ingest, key=b"/kb/zephyr.md")
            await broker.publish(command.model_dump_json().encode(), topics.ingest, key=b"/kb/zephyr.md")
            await broker.publish(b"{}", topics.ingest)
            await broker.publish(prepared("Who commissioned Zephyr-9?", "c2").to_bytes(), topics.preprocessed)
        progress = [IngestProgress.model_validate_json(raw) for raw in out[topics.ingest_progress]]
        assert [(p.job_id, p.chunks, p.embedded, p.error) for p in progress] == [("j1", 1, 1, None), ("j1", 1, 0, None)]
        assert out[topics.dlq] == [b"{}"]
        grounding = Envelope.from_bytes(out[topics.grounded][0]).grounding
        assert grounding is not None
        assert [d.source for d in grounding.documents] == ["/kb/zephyr.md"]

    async def test_missing_prepared_section_is_an_error_answer(self, tmp_path: Path) -> None:
        """A message that skipped preprocess is answered with an error, not crashed on."""
        service = create_service(settings(tmp_path))
        topics = service.settings.core.topics
        out = capture(service.broker, topics.grounded, topics.responses)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(make_envelope().to_bytes(), topics.preprocessed)
        assert out[topics.grounded] == []
        error = Envelope.from_bytes(out[topics.responses][0]).error
        assert error is not None
        assert error.code == "invalid_message"


class TestQdrantKey:
    def test_a_default_api_key_is_refused_outside_dev_mode(self, tmp_path: Path) -> None:
        """A Qdrant server with a known default API key stops grounding at start; dev mode allows it."""
        knowledge = KnowledgeSettings(url="http://qdrant:6333", api_key=SecretStr("changeme"))
        with pytest.raises(DefaultSecretError, match="LLMOPS_QDRANT_API_KEY"):
            open_store(GroundingSettings(knowledge=knowledge))
        open_store(GroundingSettings(knowledge=knowledge, core=CoreSettings(dev_mode=True)))  # not connected yet
        open_store(GroundingSettings(knowledge=KnowledgeSettings(path=tmp_path / "q")))  # local mode: no key
