import pytest

from shared.messaging.settings import CoreSettings, TopicSettings


class TestSettings:
    def test_topic_names_use_the_prefix(self) -> None:
        """Every topic is prefix + stem."""
        topics = TopicSettings()
        assert topics.all() == [
            "llmops.requests",
            "llmops.preprocessed",
            "llmops.grounded",
            "llmops.checked",
            "llmops.generated",
            "llmops.responses",
            "llmops.responses.shadow",
            "llmops.turns",
            "llmops.usage",
            "llmops.cache",
            "llmops.ingest",
            "llmops.ingest-progress",
            "llmops.dlq",
        ]

    def test_environment_overrides(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMOPS_KAFKA_BOOTSTRAP and LLMOPS_TOPIC_PREFIX are read from the environment."""
        monkeypatch.setenv("LLMOPS_KAFKA_BOOTSTRAP", "kafka:29092")
        monkeypatch.setenv("LLMOPS_TOPIC_PREFIX", "prod.")
        core = CoreSettings()
        assert core.kafka.bootstrap == "kafka:29092"
        assert core.topics.requests == "prod.requests"

    def test_embedded_defaults(self) -> None:
        """Defaults: a local broker, a low fetch wait (Tansu), idempotent producers (Kafka's own default)."""
        core = CoreSettings()
        assert core.kafka.bootstrap == "127.0.0.1:9092"
        assert core.kafka.fetch_max_wait_ms <= 10
        assert core.kafka.enable_idempotence is True


class TestTenantRequestTopics:
    def test_each_listed_tenant_has_a_request_topic_beside_the_shared_one(self) -> None:
        """request_tenants: <prefix>requests.<tenant> for each, listed after the shared topic in all()."""
        topics = TopicSettings(prefix="x.", request_tenants=["acme", "globex", "acme"])
        assert topics.request_tenants == ["acme", "globex"]
        assert topics.tenant_requests("acme") == "x.requests.acme"
        assert topics.tenant_request_topics() == {"x.requests.acme": "acme", "x.requests.globex": "globex"}
        assert topics.all()[:3] == ["x.requests", "x.requests.acme", "x.requests.globex"]
        assert TopicSettings().all()[1] == "llmops.preprocessed"  # none by default

    def test_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMOPS_TOPIC_REQUEST_TENANTS is a JSON list."""
        monkeypatch.setenv("LLMOPS_TOPIC_REQUEST_TENANTS", '["acme"]')
        assert CoreSettings().topics.tenant_request_topics() == {"llmops.requests.acme": "acme"}

    @pytest.mark.parametrize("name", ["", "a b", "acme*", "a/b", "x" * 65])
    def test_names_that_cannot_be_topics_are_refused(self, name: str) -> None:
        """A tenant name must fit a topic name (and the envelope's 64 characters)."""
        with pytest.raises(ValueError, match="cannot name a topic"):
            TopicSettings(request_tenants=[name])
