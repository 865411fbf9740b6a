"""The grounding stage's work: entities, retrieved knowledge and memory, assembled by a prompt template."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from services.grounding.entities import EntityExtractor
from services.grounding.memory import ConversationMemory, estimate_tokens
from services.grounding.retrieval import Retriever
from services.grounding.templates import PromptTemplate, TemplateStore, UnknownTemplateError
from shared.contracts.envelope import ChatMessage, Document, Entity, Envelope, Grounding, Prepared
from shared.contracts.errors import PipelineError
from shared.contracts.shadow import is_shadow
from shared.models.chat_render import render_plain
from shared.runtime.logging import get_logger
from shared.text.embedder import Embedder, decode_vector

__all__ = ["Grounder"]

#: Our token counts are estimates of the serving model's: keep this much headroom.
_TOKEN_MARGIN = 1.25
_log = get_logger("llmops.grounding")


class Grounder:
    """Builds the final prompt: the template's system text with numbered context, memory, then the request.

    When the client sends its own history (any assistant message), server memory is not added,
    so turns are never doubled. Retrieval that fails or is slow is skipped with a warning in
    ``grounding.warnings``: the request goes on without context rather than failing.

    Example:
        >>> grounder = Grounder(ConversationMemory(), TemplateStore.load(), retriever=Retriever(store))
        >>> (await grounder.process(envelope)).grounding.documents[0].source
        '/docs/handbook.md'

    """

    def __init__(
        self,
        memory: ConversationMemory,
        templates: TemplateStore,
        *,
        retriever: Retriever | None = None,
        entities: EntityExtractor | None = None,
        embedder: Embedder | None = None,
        count_tokens: Callable[[str], int] = estimate_tokens,
        default_template: str = "default",
        tenant_templates: Mapping[str, str] | None = None,
        context_tokens: int = 1200,
        memory_tokens: int = 400,
        retrieval_timeout_s: float = 2.0,
    ) -> None:
        self.memory = memory
        self.templates = templates
        self.retriever = retriever
        self.entities = entities
        self.embedder = embedder
        self.count_tokens = count_tokens
        self.default_template = default_template
        self.tenant_templates = dict(tenant_templates or {})
        self.context_tokens = context_tokens
        self.memory_tokens = memory_tokens
        self.retrieval_timeout_s = retrieval_timeout_s

    def template_for(self, env: Envelope) -> PromptTemplate:
        """The tenant's pinned template, else the request's ``template`` metadata, else the default.

        A pinned template is the operator's choice and a live request cannot override it (issue 23);
        a shadow request may (``llmops replay --candidate template=...`` tries another on real traffic).
        """
        requested = env.require_request().metadata.get("template")
        pinned = self.tenant_templates.get(env.tenant)
        ref = (requested if is_shadow(env) else None) or pinned or requested
        try:
            return self.templates.get(ref or self.default_template)
        except UnknownTemplateError as exc:
            raise PipelineError("unknown_template", str(exc)) from exc

    async def query_vector(self, prepared: Prepared) -> npt.NDArray[np.float32] | None:
        """The prompt's embedding: preprocess's when it sent one, else computed here."""
        if prepared.embedding:
            return decode_vector(prepared.embedding)
        if self.embedder is None:
            return None
        return await asyncio.to_thread(self.embedder.embed_one, prepared.text)

    async def retrieve(
        self, tenant: str, vector: npt.NDArray[np.float32] | None, entities: Sequence[Entity], question: str = ""
    ) -> tuple[list[Document], list[str]]:
        """Retrieved chunks, or none and a warning when the store is down or slow."""
        if self.retriever is None or vector is None:
            return [], []
        try:
            documents = await asyncio.wait_for(
                asyncio.to_thread(self.retriever.retrieve, tenant, vector, entities, question), self.retrieval_timeout_s
            )
        except TimeoutError:
            warning = f"retrieval skipped: the knowledge store did not answer within {self.retrieval_timeout_s} s"
        except Exception as exc:  # noqa: BLE001 - any store failure degrades the answer, never fails it
            warning = f"retrieval skipped: {type(exc).__name__}: {exc}"[:300]
        else:
            return documents, []
        _log.warning("retrieval.skipped", reason=warning)
        return [], [warning]

    def _tokens(self, text: str) -> int:
        return math.ceil(self.count_tokens(text) * _TOKEN_MARGIN)

    def _fit(self, documents: list[Document], budget: int) -> tuple[list[Document], int]:
        """The best documents that fit in ``budget`` tokens, in rank order, and the tokens they use."""
        kept, used = [], 0
        for doc in documents:
            tokens = self._tokens(doc.text) + 16  # the number, title and heading line
            if used + tokens <= budget:
                kept.append(doc)
                used += tokens
        return kept, used

    async def process(self, env: Envelope) -> Envelope:
        """Fill ``grounding``; raises ``PipelineError`` for an unknown template."""
        prepared = env.prepared
        if prepared is None:
            raise PipelineError("invalid_message", "grounding needs the prepared section")
        template = self.template_for(env)
        entities = self.entities.extract(prepared.text) if self.entities is not None else []
        vector = await self.query_vector(prepared)
        retrieved, warnings = await self.retrieve(env.tenant, vector, entities, prepared.text)

        # What the prompt may still grow by: the model's budget minus what the request already takes.
        room = max(prepared.token_budget - prepared.token_count, 0)
        documents, used = self._fit(retrieved, min(self.context_tokens, room))
        if len(documents) < len(retrieved):
            warnings.append(f"{len(retrieved) - len(documents)} retrieved chunks left out: token budget")

        client_system = [m.content for m in prepared.messages if m.role == "system"]
        dialogue = [m for m in prepared.messages if m.role != "system"]
        has_own_history = any(m.role == "assistant" for m in dialogue)
        memory_budget = int(min(self.memory_tokens, room - used) / _TOKEN_MARGIN)
        memory = (
            []
            if has_own_history or memory_budget <= 0
            else self.memory.recall(
                env.tenant,
                env.conversation_id,
                query=vector,
                token_budget=memory_budget,
                exclude_request=env.request_id,
            )
        )
        system = template.render(
            documents=documents,
            memory=memory,
            entities=entities,
            question=prepared.text,
            client_system="\n\n".join(client_system),
        )
        messages = [ChatMessage(role="system", content=system)]
        for turn in memory:
            messages.append(ChatMessage(role="user", content=turn.user))
            messages.append(ChatMessage(role="assistant", content=turn.assistant))
        messages.extend(dialogue)

        grounding = Grounding(
            memory=memory,
            documents=documents,
            entities=entities,
            template_id=template.id,
            template_version=template.version,
            messages=messages,
            prompt=render_plain(messages),
            warnings=warnings,
        )
        return env.model_copy(update={"grounding": grounding})
