import pytest

from services.preprocess.reply_policy import ReplyTopicNotAllowedError, ReplyTopicPolicy
from services.preprocess.tenant_switches import TenantPolicyFile
from shared.contracts.envelope import Envelope
from tests.conftest import make_envelope

RESPONSES = "llmops.responses"


def _policy(data: dict[str, object]) -> ReplyTopicPolicy:
    return ReplyTopicPolicy(TenantPolicyFile.model_validate(data), default_topic=RESPONSES)


class TestReplyTopicPolicy:
    def test_no_policy_means_the_builtin_patterns(self) -> None:
        """Without reply-topic settings (the secure profiles set none) the built-in patterns apply (issue 23).

        The shared responses topic, the tenant's own topics and the gateways'; never another tenant's or
        an internal topic (it was every topic: dev mode).
        """
        policy = _policy({"tenants": {"acme": {"typo_correction": False}}})
        assert not policy.configured
        assert policy.allowed("acme", None)
        assert policy.allowed("acme", RESPONSES)
        assert policy.allowed("acme", "llmops.responses.acme")
        assert policy.allowed("acme", "llmops.responses.acme.cli")
        assert policy.allowed("acme", "llmops.responses.gateway-pod-1")
        for forbidden in ("llmops.responses.globex", "llmops.responses.acmex", "llmops.preprocessed", "other.topic"):
            assert not policy.allowed("acme", forbidden), forbidden
        assert policy.check(make_envelope(tenant="acme", reply_to="llmops.responses.globex")) is not None

    def test_tenant_patterns(self) -> None:
        """A tenant's own globs decide; other tenants' topics and the shared topic are refused."""
        policy = _policy({"tenants": {"acme": {"reply_topics": ["acme.replies.*", "llmops.gateway"]}}})
        assert policy.allowed("acme", "acme.replies.web")
        assert policy.allowed("acme", "llmops.gateway")
        assert not policy.allowed("acme", "globex.replies.web")
        assert not policy.allowed("acme", None)  # None asks for the default responses topic
        assert not policy.allowed("acme", "acme.replies")  # the glob needs the dot

    def test_tenant_placeholder(self) -> None:
        """{tenant} in a default pattern is each tenant's own name."""
        policy = _policy({"default_reply_topics": ["llmops.replies.{tenant}", "llmops.replies.{tenant}.*"]})
        assert policy.allowed("acme", "llmops.replies.acme")
        assert policy.allowed("acme", "llmops.replies.acme.cli")
        assert not policy.allowed("acme", "llmops.replies.globex")
        assert not policy.allowed("acme", "llmops.replies.acmex")

    @pytest.mark.parametrize("tenant", ["*", "acme*", "[a-z]*", "?"])
    def test_tenant_name_cannot_widen_a_pattern(self, tenant: str) -> None:
        """A tenant named like a glob matches only its literal topic, never another tenant's."""
        policy = _policy({"default_reply_topics": ["llmops.replies.{tenant}"]})
        assert not policy.allowed(tenant, "llmops.replies.acme")
        assert policy.allowed(tenant, f"llmops.replies.{tenant}")

    def test_own_patterns_replace_the_defaults(self) -> None:
        """A tenant with its own list does not also get the defaults; an unlisted tenant gets them."""
        policy = _policy({"default_reply_topics": [RESPONSES], "tenants": {"acme": {"reply_topics": ["acme.replies"]}}})
        assert not policy.allowed("acme", RESPONSES)
        assert policy.allowed("globex", RESPONSES)
        assert policy.allowed("globex", None)

    def test_unlisted_tenant_without_defaults_is_refused(self) -> None:
        """When the check is on, a tenant the file does not know may use no topic at all."""
        policy = _policy({"tenants": {"acme": {"reply_topics": ["acme.replies"]}}})
        assert not policy.allowed("globex", "acme.replies")
        assert not policy.allowed("globex", "globex.replies")

    def test_check_gives_the_refusal(self) -> None:
        """check() returns a reply_topic_not_allowed error, answered on the default topic and not dead-lettered."""
        policy = _policy({"default_reply_topics": ["llmops.replies.{tenant}"]})
        ok = make_envelope(tenant="acme", reply_to="llmops.replies.acme")
        bad = make_envelope(tenant="acme", reply_to="llmops.replies.globex")
        ok_result, refusal = policy.check_all([ok, bad])
        assert ok_result is None
        assert isinstance(refusal, ReplyTopicNotAllowedError)
        assert refusal.code == "reply_topic_not_allowed"
        assert "llmops.replies.globex" in refusal.message
        assert refusal.answer_on_default_topic
        assert not refusal.dead_letter


SHADOW = "llmops.responses.shadow"


def _shadow_policy(data: dict[str, object]) -> ReplyTopicPolicy:
    return ReplyTopicPolicy(TenantPolicyFile.model_validate(data), default_topic=RESPONSES, shadow_topic=SHADOW)


def _shadow_request(reply_to: str | None, tenant: str = "acme") -> Envelope:
    env = make_envelope(reply_to=reply_to, tenant=tenant)
    env.require_request().metadata["shadow"] = "replay"
    return env


class TestShadowReplyTopic:
    @pytest.mark.parametrize("data", [{}, {"default_reply_topics": ["llmops.responses.{tenant}"]}])
    def test_shadow_requests_reply_only_to_the_shadow_topic(self, data: dict[str, object]) -> None:
        """Dev mode or not, a shadow request may name the shadow topic (or none), never a user's topic."""
        policy = _shadow_policy(data)
        assert policy.check(_shadow_request(SHADOW)) is None
        assert policy.check(_shadow_request(None)) is None
        for topic in (RESPONSES, "llmops.responses.acme", "llmops.responses.globex"):
            refusal = policy.check(_shadow_request(topic))
            assert isinstance(refusal, ReplyTopicNotAllowedError), topic
            assert refusal.topic == topic

    @pytest.mark.parametrize("data", [{}, {"default_reply_topics": ["llmops.responses.{tenant}"]}])
    def test_live_requests_may_never_name_the_shadow_topic(self, data: dict[str, object]) -> None:
        """The shadow topic is reserved: a live request naming it is refused, even for a tenant called 'shadow'."""
        policy = _shadow_policy(data)
        for tenant in ("acme", "shadow"):
            refusal = policy.check(make_envelope(reply_to=SHADOW, tenant=tenant))
            assert isinstance(refusal, ReplyTopicNotAllowedError)
        assert policy.check(make_envelope(reply_to="llmops.responses.acme", tenant="acme")) is None
