import time
from collections.abc import Sequence

import numpy as np
import pytest

from services.grounding.entities import EntityExtractor
from services.grounding.grounder import Grounder
from services.grounding.memory import ConversationMemory
from services.grounding.retrieval import Retriever
from services.grounding.templates import TemplateStore
from shared.contracts.envelope import ChatMessage, Document, Entity, Envelope, Prepared, Request
from shared.contracts.errors import PipelineError
from shared.contracts.turn import Turn
from shared.knowledge.store import KnowledgeStore, StoredChunk
from shared.stack.embedded import free_port
from shared.text.embedder import Embedder, encode_vector


def prepared(
    messages: list[ChatMessage],
    *,
    conversation: str = "c1",
    metadata: dict[str, str] | None = None,
    tenant: str = "default",
    budget: int = 3000,
    embedding: str | None = None,
) -> Envelope:
    env = Envelope(
        conversation_id=conversation, tenant=tenant, request=Request(messages=messages, metadata=metadata or {})
    )
    env.prepared = Prepared(
        messages=messages,
        text=messages[-1].content,
        model="m",
        token_count=10,
        token_budget=budget,
        embedding=embedding,
    )
    return env


def ask(text: str, **kwargs: object) -> Envelope:
    return prepared([ChatMessage(role="user", content=text)], **kwargs)  # type: ignore[arg-type]


FACTS = [
    "The Zephyr-9 reactor was commissioned by Halvorsen Labs in 2031.",
    "Halvorsen Labs has offices in Tromsø and Bergen.",
    "The cafeteria opens at 7 am.",
]


@pytest.fixture
def kb(store: KnowledgeStore, embedder: Embedder) -> KnowledgeStore:
    chunks = [
        StoredChunk(f"00000000-0000-4000-8000-{i:012d}", t, f"/kb/{i}.md", "KB", "Facts", i, "h")
        for i, t in enumerate(FACTS)
    ]
    store.upsert("default", chunks, embedder.embed(FACTS))
    return store


class SlowRetriever(Retriever):
    """A retriever whose store takes longer than the grounder waits."""

    def retrieve(
        self, tenant: str, vector: np.ndarray, entities: Sequence[Entity] = (), question: str = ""
    ) -> list[Document]:
        time.sleep(0.5)
        return super().retrieve(tenant, vector, entities, question)


class TestGrounder:
    async def test_template_then_memory_then_question(self) -> None:
        """The prompt is the system text, earlier turns of the conversation, then the new question."""
        memory = ConversationMemory()
        memory.add(
            Turn(request_id="r0", conversation_id="c1", tenant="default", user="Capital of France?", assistant="Paris.")
        )
        out = await Grounder(memory, TemplateStore.load()).process(ask("Its population?"))
        assert out.grounding is not None
        roles = [(m.role, m.content) for m in out.grounding.messages[1:]]
        assert roles == [("user", "Capital of France?"), ("assistant", "Paris."), ("user", "Its population?")]
        assert out.grounding.messages[0].role == "system"
        assert (out.grounding.template_id, out.grounding.template_version) == ("default", 3)
        assert [t.request_id for t in out.grounding.memory] == ["r0"]
        assert out.grounding.prompt.endswith("User: Its population?\nAssistant:")

    async def test_retrieved_documents_are_numbered_in_the_prompt(
        self, kb: KnowledgeStore, embedder: Embedder, extractor: EntityExtractor
    ) -> None:
        """Retrieved chunks are recorded with id, source and score and numbered [n] in the system prompt."""
        grounder = Grounder(
            ConversationMemory(),
            TemplateStore.load(),
            retriever=Retriever(kb, k=2),
            entities=extractor,
            embedder=embedder,
        )
        out = await grounder.process(ask("Who commissioned the Zephyr-9 reactor?"))
        grounding = out.grounding
        assert grounding is not None
        assert grounding.documents[0].text == FACTS[0]
        assert grounding.documents[0].source == "/kb/0.md"
        assert grounding.documents[0].id == "00000000-0000-4000-8000-000000000000"
        system = grounding.messages[0].content
        assert f"KB — Facts\n{FACTS[0]}" in system
        assert "[1]" not in system
        assert grounding.warnings == []

    async def test_uses_the_prepared_embedding(self, kb: KnowledgeStore, embedder: Embedder) -> None:
        """The embedding preprocess sent is used as the query (no embedder needed here)."""
        grounder = Grounder(ConversationMemory(), TemplateStore.load(), retriever=Retriever(kb, k=1))
        vector = encode_vector(embedder.embed_one("When does the cafeteria open?"))
        out = await grounder.process(ask("unrelated words", embedding=vector))
        assert out.grounding is not None
        assert [d.text for d in out.grounding.documents] == [FACTS[2]]

    async def test_entities_are_recorded(self, extractor: EntityExtractor) -> None:
        """The prompt's named entities are recorded in the grounding section."""
        grounder = Grounder(ConversationMemory(), TemplateStore.load(), entities=extractor)
        out = await grounder.process(ask("Did Ada Lovelace visit Paris?"))
        assert out.grounding is not None
        assert {(e.text, e.label) for e in out.grounding.entities} >= {("Ada Lovelace", "PERSON"), ("Paris", "GPE")}

    async def test_store_down_degrades_with_a_warning(self, embedder: Embedder) -> None:
        """With Qdrant unreachable the prompt is still built, without context, and the reason is recorded."""
        down = KnowledgeStore(url=f"http://127.0.0.1:{free_port()}", timeout_s=1)
        grounder = Grounder(ConversationMemory(), TemplateStore.load(), retriever=Retriever(down), embedder=embedder)
        out = await grounder.process(ask("Who commissioned the Zephyr-9 reactor?"))
        assert out.grounding is not None
        assert out.grounding.documents == []
        assert out.grounding.warnings[0].startswith("retrieval skipped: ")
        assert "Context" not in out.grounding.messages[0].content

    async def test_slow_store_is_skipped(self, kb: KnowledgeStore, embedder: Embedder) -> None:
        """A retrieval slower than the timeout is abandoned with a warning."""
        grounder = Grounder(
            ConversationMemory(),
            TemplateStore.load(),
            retriever=SlowRetriever(kb),
            embedder=embedder,
            retrieval_timeout_s=0.1,
        )
        out = await grounder.process(ask("Who commissioned the Zephyr-9 reactor?"))
        assert out.grounding is not None
        assert out.grounding.documents == []
        assert "did not answer within 0.1 s" in out.grounding.warnings[0]

    async def test_context_fits_the_token_budget(self, kb: KnowledgeStore, embedder: Embedder) -> None:
        """Chunks that do not fit the model's remaining budget are left out, with a warning."""
        grounder = Grounder(
            ConversationMemory(), TemplateStore.load(), retriever=Retriever(kb, k=3, threshold=0.0), embedder=embedder
        )
        out = await grounder.process(ask("Who commissioned the Zephyr-9 reactor?", budget=50))
        assert out.grounding is not None
        assert len(out.grounding.documents) == 1
        assert "left out" in out.grounding.warnings[0]

    async def test_template_pinned_by_tenant_then_request(self) -> None:
        """A tenant's pinned template wins over a live request's metadata (issue 23); unpinned, the request picks."""
        grounder = Grounder(ConversationMemory(), TemplateStore.load(), tenant_templates={"acme": "concise"})
        by_tenant = await grounder.process(ask("Hi", tenant="acme"))
        forced = await grounder.process(ask("Hi", tenant="acme", metadata={"template": "default@1"}))
        by_request = await grounder.process(ask("Hi", tenant="globex", metadata={"template": "default@1"}))
        default = await grounder.process(ask("Hi"))
        shadow = await grounder.process(
            ask("Hi", tenant="acme", metadata={"template": "default@1", "shadow": "replay"})
        )
        picked = [
            (env.grounding.template_id, env.grounding.template_version) if env.grounding else None
            for env in (by_tenant, forced, by_request, default, shadow)
        ]
        assert picked == [("concise", 2), ("concise", 2), ("default", 1), ("default", 3), ("default", 1)]

    async def test_client_history_replaces_memory(self) -> None:
        """When the client sends its own history, server memory is not added again."""
        memory = ConversationMemory()
        memory.add(Turn(request_id="r0", conversation_id="c1", tenant="default", user="x", assistant="y"))
        history = [
            ChatMessage(role="user", content="x"),
            ChatMessage(role="assistant", content="y"),
            ChatMessage(role="user", content="z"),
        ]
        out = await Grounder(memory, TemplateStore.load()).process(prepared(history))
        assert out.grounding is not None
        assert out.grounding.memory == []
        assert len(out.grounding.messages) == 4

    async def test_client_system_message_is_kept(self) -> None:
        """A client's system message is added to the template's."""
        msgs = [ChatMessage(role="system", content="Answer in French."), ChatMessage(role="user", content="Hi")]
        out = await Grounder(ConversationMemory(), TemplateStore.load()).process(prepared(msgs))
        assert out.grounding is not None
        assert out.grounding.messages[0].content.endswith("Answer in French.")

    async def test_unknown_template(self) -> None:
        """A request naming a template that does not exist gets a clear error."""
        with pytest.raises(PipelineError) as err:
            await Grounder(ConversationMemory(), TemplateStore.load()).process(
                ask("Hi", metadata={"template": "missing"})
            )
        assert err.value.code == "unknown_template"
