from pathlib import Path

import pytest

from shared.runtime.settings import CoreSettings, TopicSettings


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


class TestTenantConfiguration:
    def test_nothing_configured(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without LLMOPS_TENANTS(_FILE) no tenant is declared and the topics are as before."""
        monkeypatch.delenv("LLMOPS_TENANTS", raising=False)
        monkeypatch.delenv("LLMOPS_TENANTS_FILE", raising=False)
        core = CoreSettings()
        assert core.tenant_config().tenants == {}
        assert core.topics.request_tenants == []

    def test_the_file_is_read_at_start(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """LLMOPS_TENANTS_FILE is loaded and its request-topic tenants join the topics."""
        path = tmp_path / "tenants.yaml"
        path.write_text("tenants:\n  acme: {request_topic: true}\n")
        monkeypatch.setenv("LLMOPS_TENANTS_FILE", str(path))
        core = CoreSettings()
        assert core.topics.request_tenants == ["acme"]
        assert core.topics.tenant_request_topics() == {"llmops.requests.acme": "acme"}

    def test_the_json_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMOPS_TENANTS holds the same shape as JSON."""
        monkeypatch.setenv("LLMOPS_TENANTS", '{"tenants": {"acme": {"quota": {"tokens_per_day": 9}}}}')
        assert CoreSettings().tenant_config().quota("acme").tokens_per_day == 9

    def test_a_mistake_fails_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A mistake stops the settings from loading, naming the tenant and the field."""
        monkeypatch.setenv("LLMOPS_TENANTS", '{"tenants": {"acme": {"request_topics": true}}}')
        with pytest.raises(ValueError, match="tenant 'acme': request_topics: unknown key"):
            CoreSettings()

    def test_not_both(self, tmp_path: Path) -> None:
        """The file and the JSON variable are one or the other."""
        with pytest.raises(ValueError, match="not both"):
            CoreSettings(tenants_file=tmp_path / "t.yaml", tenants={})

    def test_old_request_tenants_still_work(self) -> None:
        """LLMOPS_TOPIC_REQUEST_TENANTS adds to the configuration's request-topic tenants."""
        core = CoreSettings(
            topics=TopicSettings(request_tenants=["acme"]), tenants={"tenants": {"globex": {"request_topic": True}}}
        )
        assert set(core.topics.request_tenants) == {"acme", "globex"}
        assert core.tenant_config().tenant("acme").request_topic is True

    def test_old_and_new_disagreeing_fail(self) -> None:
        """A tenant given a topic by the old variable and refused one by the file fails, naming both."""
        with pytest.raises(ValueError, match="request_topic is false in LLMOPS_TENANTS but true in LLMOPS_TOPIC"):
            CoreSettings(
                topics=TopicSettings(request_tenants=["acme"]), tenants={"tenants": {"acme": {"request_topic": False}}}
            )
