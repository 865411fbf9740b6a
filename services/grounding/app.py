"""Grounding service wiring: ``llmops.preprocessed`` → ``llmops.grounded``; memory fed from ``llmops.turns``.

The service also owns the knowledge store in embedded mode: ``llmops ingest`` sends prepared
chunks on ``llmops.ingest`` and reads what was written on ``llmops.ingest-progress``.
"""

from __future__ import annotations

import asyncio

from faststream import AckPolicy
from faststream.kafka import KafkaMessage
from pydantic import ValidationError

from services.grounding.entities import EntityExtractor
from services.grounding.grounder import Grounder
from services.grounding.memory import ConversationMemory
from services.grounding.retrieval import Retriever
from services.grounding.settings import GroundingSettings
from services.grounding.templates import TemplateStore
from shared.components.embedder import Embedder
from shared.components.knowledge.ingest import IngestCommand, IngestProgress, IngestWriter
from shared.components.knowledge.store import KnowledgeStore, StoreUnavailableError
from shared.components.knowledge.tokens import TokenCounter
from shared.messaging.broker import consumer_options
from shared.messaging.envelope import Turn
from shared.messaging.errors import PoisonMessageError
from shared.messaging.secrets import refuse_default_secrets
from shared.messaging.service import ProcessFn, StageService, raw_body
from shared.messaging.stage import ReceivedRecord

__all__ = ["create_service", "open_store"]


def open_store(settings: GroundingSettings) -> KnowledgeStore:
    """The knowledge store the settings point at (not opened yet)."""
    knowledge = settings.knowledge
    if knowledge.url:
        refuse_default_secrets({"LLMOPS_QDRANT_API_KEY": knowledge.api_key}, dev_mode=settings.core.dev_mode)
    return knowledge.store(settings.core.data_dir)


def build_grounder(
    settings: GroundingSettings,
    store: KnowledgeStore,
    counter: TokenCounter,
    entities: EntityExtractor | None,
    memory: ConversationMemory,
    *,
    embedder: Embedder | None = None,
) -> Grounder:
    """The stage logic wired from its settings (the service and the feature benchmark use this)."""
    templates = TemplateStore.load(settings.templates_dir)
    return Grounder(
        memory,
        templates,
        retriever=Retriever(
            store,
            k=settings.retrieval_k,
            candidates=settings.retrieval_candidates,
            threshold=settings.retrieval_threshold,
            mmr_lambda=settings.mmr_lambda,
            keyword_weight=settings.keyword_weight,
            entity_boost=settings.entity_boost,
        ),
        entities=entities,
        embedder=embedder,
        count_tokens=counter.count,
        default_template=settings.default_template,
        tenant_templates=settings.templates_by_tenant(templates.get),
        context_tokens=settings.context_tokens,
        memory_tokens=settings.memory_tokens,
        retrieval_timeout_s=settings.knowledge.timeout_s,
    )


def create_service(settings: GroundingSettings | None = None) -> StageService:
    """Build the service; every replica reads all of the turns topic (no group) to hold all memory."""
    settings = settings or GroundingSettings()
    topics = settings.core.topics
    service = StageService("grounding", settings, input_topic=topics.preprocessed)
    counter = TokenCounter()
    memory = ConversationMemory(
        recent_turns=settings.memory_turns,
        relevant_turns=settings.memory_relevant_turns,
        max_turns=settings.memory_max_turns,
        max_conversations=settings.memory_conversations,
        min_relevance=settings.memory_min_relevance,
        count_tokens=counter.count,
    )
    embedder = Embedder()
    store = open_store(settings)
    writer = IngestWriter(store, embedder)

    async def warm_up() -> ProcessFn:
        await asyncio.to_thread(counter.warm_up)
        await asyncio.to_thread(embedder.warm_up)
        entities = EntityExtractor() if settings.entities else None
        if entities is not None:
            await asyncio.to_thread(entities.warm_up)
        try:
            await asyncio.to_thread(store.warm_up)
        except StoreUnavailableError as exc:
            # Degraded, not down: requests are answered without retrieval until the store answers.
            service.log.warning("knowledge.unavailable", error=str(exc)[:300])
        grounder = build_grounder(settings, store, counter, entities, memory, embedder=embedder)
        return grounder.process

    service.bind(warm_up=warm_up, route=lambda _env: topics.grounded)

    async def close_store() -> None:
        await asyncio.to_thread(store.close)

    service.on_shutdown(close_store)

    async def on_turn(turn: Turn) -> None:
        # In memory at once, so a quick follow-up finds it; the embedding (for relevance once it is older) follows.
        memory.add(turn)
        memory.set_vector(turn, await asyncio.to_thread(embedder.embed_one, f"{turn.user}\n{turn.assistant}"))

    # A quick follow-up must find the turn before it: memory is on the request path.
    service.follow(topics.turns, Turn, on_turn, what="turn", request_path=True)

    @service.broker.subscriber(
        topics.ingest,
        group_id=f"{service.group_id}-ingest",
        ack_policy=AckPolicy.ACK,
        decoder=raw_body,
        **consumer_options(settings.core.kafka, request_path=False),
    )
    async def on_ingest(body: bytes, message: KafkaMessage) -> None:
        try:
            command = IngestCommand.model_validate_json(body)
        except (ValidationError, ValueError) as exc:
            record = ReceivedRecord.from_consumer_record(message.raw_message)
            await service.runner.dead_letter(body, record, PoisonMessageError(f"invalid ingest command: {exc}"))
            return
        try:
            progress = await asyncio.to_thread(writer.apply, command)
        except Exception as exc:  # noqa: BLE001 - reported to the ingesting client, never kills the consumer
            service.log.warning("ingest.failed", source=command.source, error=str(exc)[:300])
            progress = IngestProgress(
                job_id=command.job_id,
                source=command.source,
                part=command.part,
                parts=command.parts,
                chunks=len(command.chunks),
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
        service.log.info(
            "ingest.applied",
            source=command.source,
            part=command.part,
            embedded=progress.embedded,
            removed=progress.removed,
        )
        await service.runner.send(
            topics.ingest_progress, progress.model_dump_json().encode(), key=command.job_id.encode(), headers={}
        )

    return service
