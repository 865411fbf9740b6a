"""The grounding stage: ``llmops.preprocessed`` → ``llmops.grounded``; memory fed from ``llmops.turns``.

The stage also owns the knowledge store in embedded mode: ``llmops ingest`` sends prepared
chunks on ``llmops.ingest`` and reads what was written on ``llmops.ingest-progress``.
Every replica reads all of the turns topic (no group) to hold all memory.
"""

from __future__ import annotations

import asyncio

from services.grounding.entities import EntityExtractor
from services.grounding.grounder import Grounder
from services.grounding.memory import ConversationMemory
from services.grounding.retrieval import Retriever
from services.grounding.settings import GroundingSettings
from services.grounding.templates import TemplateStore
from shared.contracts.envelope import Envelope
from shared.contracts.stage import Output, Outputs, SideHandler, Stage, StageContext
from shared.contracts.topology import Role
from shared.contracts.turn import Turn
from shared.knowledge.ingest import IngestCommand, IngestProgress, IngestWriter
from shared.knowledge.store import KnowledgeStore, StoreUnavailableError
from shared.knowledge.tokens import TokenCounter
from shared.runtime.logging import get_logger
from shared.runtime.secrets import refuse_default_secrets
from shared.text.embedder import Embedder

__all__ = ["GroundingStage", "build_grounder", "open_store"]


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


class GroundingStage(Stage):
    """Memory, retrieved documents and entities around each prompt, assembled from a template.

    Example:
        >>> stage = GroundingStage(GroundingSettings())
        >>> await stage.warm_up(service)
        >>> (await stage.process([prepared]))[0][0].role
        <Role.GROUNDED: 'grounded'>

    """

    name = "grounding"

    def __init__(self, settings: GroundingSettings) -> None:
        self.settings = settings
        self.log = get_logger("llmops.grounding")
        self.counter = TokenCounter()
        self.memory = ConversationMemory(
            recent_turns=settings.memory_turns,
            relevant_turns=settings.memory_relevant_turns,
            max_turns=settings.memory_max_turns,
            max_conversations=settings.memory_conversations,
            min_relevance=settings.memory_min_relevance,
            count_tokens=self.counter.count,
        )
        self.embedder = Embedder()
        self.store = open_store(settings)
        self.writer = IngestWriter(self.store, self.embedder)
        self._grounder: Grounder | None = None

    async def warm_up(self, context: StageContext) -> None:  # noqa: ARG002 - publishes nothing of its own
        """Load the tokenizer, the embedder, the entity model and the knowledge store."""
        await asyncio.to_thread(self.counter.warm_up)
        await asyncio.to_thread(self.embedder.warm_up)
        entities = EntityExtractor() if self.settings.entities else None
        if entities is not None:
            await asyncio.to_thread(entities.warm_up)
        try:
            await asyncio.to_thread(self.store.warm_up)
        except StoreUnavailableError as exc:
            # Degraded, not down: requests are answered without retrieval until the store answers.
            self.log.warning("knowledge.unavailable", error=str(exc)[:300])
        self._grounder = build_grounder(
            self.settings, self.store, self.counter, entities, self.memory, embedder=self.embedder
        )

    async def process(self, batch: list[Envelope]) -> list[Outputs | Exception]:
        """Each prepared request, grounded (one at a time: ``delivery`` is ``one``)."""
        if self._grounder is None:
            msg = "grounding: warm_up() was not awaited"
            raise RuntimeError(msg)
        results: list[Outputs | Exception] = []
        for env in batch:
            try:
                results.append([Output.of(Role.GROUNDED, await self._grounder.process(env))])
            except Exception as exc:  # noqa: BLE001 - the runner answers it as this request's error
                results.append(exc)
        return results

    def side_handlers(self) -> list[SideHandler]:
        """Finished turns (on the request path: a quick follow-up needs the turn before it) and ingest commands."""
        return [
            SideHandler(Role.TURNS, Turn, self.on_turn, what="turn", request_path=True),
            SideHandler(Role.INGEST, IngestCommand, self.on_ingest, what="ingest command"),
        ]

    async def on_turn(self, turn: Turn) -> Outputs:
        """Remember a finished turn (forget it again when it is retracted: its answer was never sent)."""
        if turn.retracted:
            if self.memory.retract(turn):
                self.log.info("memory.turn_retracted", request_id=turn.request_id)
            return []
        # In memory at once, so a quick follow-up finds it; the embedding (for relevance once it is older) follows.
        self.memory.add(turn)
        self.memory.set_vector(turn, await asyncio.to_thread(self.embedder.embed_one, f"{turn.user}\n{turn.assistant}"))
        return []

    async def on_ingest(self, command: IngestCommand) -> Outputs:
        """Write one part of an ingest job to the store; what was written goes back on ``llmops.ingest-progress``."""
        try:
            progress = await asyncio.to_thread(self.writer.apply, command)
        except Exception as exc:  # noqa: BLE001 - reported to the ingesting client, never kills the consumer
            self.log.warning("ingest.failed", source=command.source, error=str(exc)[:300])
            progress = IngestProgress(
                job_id=command.job_id,
                source=command.source,
                part=command.part,
                parts=command.parts,
                chunks=len(command.chunks),
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
        self.log.info(
            "ingest.applied",
            source=command.source,
            part=command.part,
            embedded=progress.embedded,
            removed=progress.removed,
        )
        return [Output.record(Role.INGEST_PROGRESS, progress, key=command.job_id)]

    async def close(self) -> None:
        """Close the knowledge store."""
        await asyncio.to_thread(self.store.close)
