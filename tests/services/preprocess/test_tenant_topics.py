"""The tenant comes from the request topic (T7): assignment, refusal of a forged claim, and through the service."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from services.preprocess.app import create_service
from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from services.preprocess.tenant_topics import TenantMismatchError, TenantTopics
from shared.contracts.envelope import Envelope
from shared.runtime.settings import CoreSettings, TopicSettings
from tests.conftest import capture, make_envelope

TOPICS = TopicSettings(request_tenants=["acme", "globex"])
ACME, GLOBEX = TOPICS.tenant_requests("acme"), TOPICS.tenant_requests("globex")


class TestTenantTopics:
    def test_inputs_are_the_shared_topic_then_each_tenants(self) -> None:
        """Preprocess reads llmops.requests and llmops.requests.<tenant> for each listed tenant."""
        assert TenantTopics(TOPICS, shared_default_only=False).inputs() == [
            "llmops.requests",
            "llmops.requests.acme",
            "llmops.requests.globex",
        ]

    @pytest.mark.parametrize("claimed", ["default", "acme"])
    def test_tenant_topic_gives_its_tenant(self, claimed: str) -> None:
        """A body naming no tenant (default) or the topic's own gets the topic's tenant."""
        env = TenantTopics(TOPICS, shared_default_only=True).assign(make_envelope(tenant=claimed), ACME)
        assert env.tenant == "acme"

    def test_other_tenant_on_a_tenant_topic_is_refused(self) -> None:
        """Claiming globex on acme's topic is tenant_mismatch; the refusal's envelope is acme's, answered by default."""
        with pytest.raises(TenantMismatchError) as err:
            TenantTopics(TOPICS, shared_default_only=False).assign(make_envelope(tenant="globex"), ACME)
        exc = err.value
        assert (exc.code, exc.tenant, exc.claimed, exc.topic) == ("tenant_mismatch", "acme", "globex", ACME)
        assert exc.envelope.tenant == "acme"
        assert exc.answer_on_default_topic
        assert exc.dead_letter
        assert "globex" in exc.message
        assert ACME in exc.message

    def test_shared_topic_in_dev_mode_takes_the_body(self) -> None:
        """Security off: the shared topic keeps the body's tenant (the behaviour before issue 14)."""
        env = TenantTopics(TOPICS, shared_default_only=False).assign(make_envelope(tenant="globex"), TOPICS.requests)
        assert env.tenant == "globex"

    def test_shared_topic_with_security_on_carries_only_the_default_tenant(self) -> None:
        """Security on: a named tenant on the shared topic is refused; the default tenant passes."""
        topics = TenantTopics(TOPICS, shared_default_only=True)
        assert topics.assign(make_envelope(), TOPICS.requests).tenant == "default"
        with pytest.raises(TenantMismatchError) as err:
            topics.assign(make_envelope(tenant="globex"), TOPICS.requests)
        assert err.value.envelope.tenant == "default"
        assert "has a topic of its own" in err.value.message


def _settings(*, tenant_from_topic: bool) -> PreprocessSettings:
    return PreprocessSettings(core=CoreSettings(topics=TOPICS), tenant_from_topic=tenant_from_topic)


class TestThroughTheService:
    async def test_spoofed_tenant_is_refused_and_nothing_of_the_victim_is_touched(self, warm_pre: Preprocessor) -> None:
        """On acme's topic, a request claiming globex: tenant_mismatch on llmops.responses, a DLQ record, nothing else."""
        service = create_service(_settings(tenant_from_topic=True), preprocessor=warm_pre)
        victim_replies = TOPICS.name("responses.globex")
        out = capture(service.broker, TOPICS.preprocessed, TOPICS.responses, TOPICS.dlq, victim_replies)
        await service.warm_up()
        forged = make_envelope(tenant="globex", reply_to=victim_replies, conversation_id="globex-conv")
        honest = make_envelope(conversation_id="acme-conv")  # names no tenant: acme's by its topic
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish_batch(forged.to_bytes(), honest.to_bytes(), topic=ACME)
        [answer] = [Envelope.from_bytes(raw) for raw in out[TOPICS.responses]]
        assert answer.request_id == forged.request_id
        assert answer.error is not None
        assert (answer.error.code, answer.error.stage) == ("tenant_mismatch", "preprocess")
        assert answer.tenant == "acme"
        assert answer.reply_to is None
        assert out[victim_replies] == []
        assert out[TOPICS.dlq] == [forged.to_bytes()]
        [prepared] = [Envelope.from_bytes(raw) for raw in out[TOPICS.preprocessed]]
        assert (prepared.request_id, prepared.tenant) == (honest.request_id, "acme")
        rendered = service.metrics.render()[0].decode()
        assert 'llmops_stage_messages_total{outcome="tenant_mismatch",stage="preprocess"} 1.0' in rendered

    async def test_shared_topic_refuses_a_named_tenant_when_security_is_on(self, warm_pre: Preprocessor) -> None:
        """tenant_from_topic: globex on llmops.requests is refused; the default tenant goes through."""
        service = create_service(_settings(tenant_from_topic=True), preprocessor=warm_pre)
        out = capture(service.broker, TOPICS.preprocessed, TOPICS.responses, TOPICS.dlq)
        await service.warm_up()
        named, anonymous = make_envelope(tenant="globex"), make_envelope()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish_batch(named.to_bytes(), anonymous.to_bytes(), topic=TOPICS.requests)
        [answer] = [Envelope.from_bytes(raw) for raw in out[TOPICS.responses]]
        assert answer.error is not None
        assert (answer.request_id, answer.error.code) == (named.request_id, "tenant_mismatch")
        assert [Envelope.from_bytes(raw).request_id for raw in out[TOPICS.preprocessed]] == [anonymous.request_id]

    async def test_dev_mode_keeps_the_body_tenant_on_the_shared_topic(self, warm_pre: Preprocessor) -> None:
        """Without tenant_from_topic the shared topic works as before; tenant topics are still checked."""
        service = create_service(_settings(tenant_from_topic=False), preprocessor=warm_pre)
        out = capture(service.broker, TOPICS.preprocessed, TOPICS.responses)
        await service.warm_up()
        async with TestKafkaBroker(service.broker) as broker:
            await broker.publish(make_envelope(tenant="globex").to_bytes(), TOPICS.requests)
            await broker.publish(make_envelope(tenant="acme").to_bytes(), GLOBEX)
        assert [Envelope.from_bytes(raw).tenant for raw in out[TOPICS.preprocessed]] == ["globex"]
        [answer] = [Envelope.from_bytes(raw) for raw in out[TOPICS.responses]]
        assert answer.error is not None
        assert (answer.error.code, answer.tenant) == ("tenant_mismatch", "globex")

    def test_the_service_subscribes_to_every_request_topic(self, warm_pre: Preprocessor) -> None:
        """One subscriber, one group (llmops-preprocess), the shared and each tenant's request topic."""
        service = create_service(_settings(tenant_from_topic=True), preprocessor=warm_pre)
        subscribers: list[Any] = list(service.broker.subscribers)
        [inputs] = [s for s in subscribers if s.group_id == "llmops-preprocess"]
        assert inputs.topic_names == [TOPICS.requests, ACME, GLOBEX]
