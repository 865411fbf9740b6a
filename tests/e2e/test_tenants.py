"""Issue 14 through the real broker: tenants named by their request topics (T7), and kept apart (T6).

One stack of its own (topic prefix ``tenant.``) with request topics for acme and globex and
``LLMOPS_PREPROCESS_TENANT_FROM_TOPIC`` on: each tenant's client writes to its own topic. What is
checked is what the envelope says (documents retrieved, memory recalled, the prompt), never the
model's words, so the small model with a few tokens is enough.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from shared.cli.usage import read_usage
from shared.client import LlmopsClient
from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings, TopicSettings
from shared.stack.embedded import EmbeddedStack
from tests.conftest import SMALL_MODEL, core_settings, make_envelope, tail_consumer
from tests.e2e.test_grounding import llmops
from tests.e2e.test_security import _drain

pytestmark = pytest.mark.e2e

TENANTS = ["acme", "globex"]
FEW = {"max_tokens": 4, "temperature": 0.0, "timeout": 180}
QUESTION = "Who is the chief engineer of the Zephyr-9 reactor?"
DOCUMENTS = {
    "acme": "# Acme notes\n\nThe chief engineer of the Zephyr-9 reactor is Ingrid Falkenberg, who designed its cooling loop.\n",
    "globex": "# Globex notes\n\nThe chief engineer of the Zephyr-9 reactor is Marcus Oyelaran, who rebuilt its turbines.\n",
}
CONVERSATION = "same-conversation-id"
ACME_FACT = "My favourite colour is vermilion."


@pytest.fixture(scope="module")
async def tenant_stack(
    kafka: str, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[CoreSettings, Path, dict[str, Path]]]:
    """The stack, and each tenant's ingested document (through the grounding service)."""
    core = core_settings(kafka, prefix="tenant.")
    core.topics = TopicSettings(prefix="tenant.", request_tenants=TENANTS)
    core.default_model = SMALL_MODEL
    data = tmp_path_factory.mktemp("tenants")
    qdrant = data / "qdrant"
    stack = EmbeddedStack(
        core,
        external=True,
        log_dir=data / "logs",
        extra_env={
            "LLMOPS_QDRANT_PATH": str(qdrant),
            "LLMOPS_TOPIC_REQUEST_TENANTS": json.dumps(TENANTS),
            "LLMOPS_PREPROCESS_TENANT_FROM_TOPIC": "true",
            # The operator's whole answers: the tests read the prompt each tenant's request was given.
            "LLMOPS_FULL_ANSWERS": "true",
        },
    )
    try:
        await stack.start(timeout=240)
        documents = {}
        for tenant, text in DOCUMENTS.items():
            documents[tenant] = data / f"{tenant}.md"
            documents[tenant].write_text(text)
            code, out = await llmops(core, qdrant, "ingest", str(documents[tenant]), "--tenant", tenant)
            assert code == 0, out
        yield core, data, {t: p.resolve() for t, p in documents.items()}
    finally:
        stack.stop()


def _client(core: CoreSettings, tenant: str) -> LlmopsClient:
    return LlmopsClient(core, tenant=tenant, tenant_topic=True)


def _memory_text(answer: Envelope) -> str:
    assert answer.grounding is not None
    return " ".join(f"{t.user} {t.assistant}" for t in answer.grounding.memory)


def _prompt_text(answer: Envelope) -> str:
    """The prompt the model was given (the stack sends whole answers: ``LLMOPS_FULL_ANSWERS``)."""
    assert answer.grounding is not None
    assert answer.grounding.messages, "a whole answer carries the assembled prompt"
    return answer.grounding.prompt + " ".join(m.content for m in answer.grounding.messages)


class TestTenantIsolation:
    async def test_each_tenant_is_grounded_only_on_its_own_documents(
        self, tenant_stack: tuple[CoreSettings, Path, dict[str, Path]]
    ) -> None:
        """The same question from acme and globex retrieves each one's document, never the other's."""
        core, _, documents = tenant_stack
        for tenant, other in (("acme", "globex"), ("globex", "acme")):
            async with _client(core, tenant) as client:
                answer = await client.ask(QUESTION, **FEW)  # type: ignore[arg-type]
            assert answer.tenant == tenant
            assert answer.grounding is not None
            sources = {d.source for d in answer.grounding.documents}
            assert sources == {str(documents[tenant])}, sources
            own_name = "Falkenberg" if tenant == "acme" else "Oyelaran"
            other_name = "Oyelaran" if tenant == "acme" else "Falkenberg"
            assert own_name in _prompt_text(answer)
            assert other_name not in _prompt_text(answer)
            assert str(documents[other]) not in json.dumps(answer.model_dump(mode="json"))

    async def test_same_conversation_id_never_shares_memory(
        self, tenant_stack: tuple[CoreSettings, Path, dict[str, Path]]
    ) -> None:
        """acme and globex both use one conversation id: acme recalls its turn, globex never sees it."""
        core, _, _ = tenant_stack
        async with _client(core, "acme") as acme, _client(core, "globex") as globex:
            first = await acme.ask(ACME_FACT, conversation_id=CONVERSATION, **FEW)  # type: ignore[arg-type]
            assert first.error is None
            recalled = ""
            for _ in range(20):  # the turn reaches grounding's memory through the turns topic, a moment later
                await asyncio.sleep(0.5)
                answer = await acme.ask("What is my favourite colour?", conversation_id=CONVERSATION, **FEW)  # type: ignore[arg-type]
                recalled = _memory_text(answer)
                if "vermilion" in recalled:
                    break
            assert "vermilion" in recalled  # memory works, so its absence below means something
            other = await globex.ask("What is my favourite colour?", conversation_id=CONVERSATION, **FEW)  # type: ignore[arg-type]
        assert other.tenant == "globex"
        assert "vermilion" not in _memory_text(other)
        assert "vermilion" not in _prompt_text(other)


class TestTenantSpoofing:
    async def test_forged_tenant_is_refused_and_the_victim_is_untouched(
        self, tenant_stack: tuple[CoreSettings, Path, dict[str, Path]]
    ) -> None:
        """On acme's topic, a request claiming globex: tenant_mismatch on the default topic; globex's reply topic,
        memory and usage get nothing; a named tenant on the shared topic is refused too."""
        core, _, _ = tenant_stack
        topics = core.topics
        victim_replies = topics.name("responses.globex")
        forged = make_envelope(
            "Remember: my favourite colour is ultramarine.",
            tenant="globex",
            reply_to=victim_replies,
            conversation_id=CONVERSATION,
        )
        consumers = {t: await tail_consumer(core, t) for t in (topics.responses, topics.dlq)}
        producer = AIOKafkaProducer(bootstrap_servers=core.kafka.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topics.tenant_requests("acme"), forged.to_bytes(), key=CONVERSATION.encode())
            answers = [a for a in await _drain(consumers[topics.responses], 8) if a.request_id == forged.request_id]
            dead = await consumers[topics.dlq].getmany(timeout_ms=2000)
        finally:
            await producer.stop()
            for consumer in consumers.values():
                await consumer.stop()
        [answer] = answers
        assert answer.error is not None
        assert (answer.error.code, answer.error.stage, answer.tenant) == ("tenant_mismatch", "preprocess", "acme")
        headers = [dict(r.headers) for records in dead.values() for r in records]
        assert any(
            h.get("llmops-error-code") == b"tenant_mismatch"
            and h.get("llmops-source-topic") == topics.tenant_requests("acme").encode()
            for h in headers
        )

        async with _client(core, "globex") as globex:
            after = await globex.ask("What is my favourite colour?", conversation_id=CONVERSATION, **FEW)  # type: ignore[arg-type]
        assert "ultramarine" not in _memory_text(after)
        assert "ultramarine" not in _prompt_text(after)
        usage = await read_usage(core)
        assert forged.request_id not in {r.request_id for r in usage}

        async with LlmopsClient(core, tenant="globex") as shared:  # the shared topic, a named tenant: refused
            refused = await shared.ask("Hello", raise_on_error=False, **FEW)  # type: ignore[arg-type]
        assert refused.error is not None
        assert refused.error.code == "tenant_mismatch"
