"""docker-compose.yml against the code, both ways: stages, topics, settings, scaling, health."""

from __future__ import annotations

import importlib.util
import re

from shared.runtime.settings import TopicSettings
from shared.stack.embedded import STAGES
from tests.infra.helpers import ROOT, compose, known_variables

ONE_SHOT = {"topics", "models"}


def deploy_files() -> list[str]:
    """The text of every deployment file: compose, Dockerfile, Prometheus, Grafana, Kubernetes."""
    paths = [ROOT / "docker-compose.yml", *sorted((ROOT / "infra").rglob("*.y*ml")), *(ROOT / "infra").rglob("*.json")]
    return [p.read_text() for p in paths]


class TestComposeAgainstCode:
    def test_every_stage_is_a_service_and_every_stage_service_a_stage(self) -> None:
        """Each stage runs as the service of its name; no service runs a stage that does not exist."""
        services = compose()["services"]
        for stage in STAGES:
            assert services[stage]["command"] == ["python", "-m", f"services.{stage}"]
        for name, svc in services.items():
            command = svc.get("command", [])
            if command[:2] == ["python", "-m"]:
                assert importlib.util.find_spec(command[2]) is not None, name
        assert services["inference-gpu"]["command"] == services["inference"]["command"]

    def test_every_stage_sets_its_own_settings(self) -> None:
        """Each stage service sets its health endpoint under its own prefix and reaches the compose broker."""
        services = compose()["services"]
        listeners = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        for stage in [*STAGES, "inference-gpu"]:
            env = services[stage]["environment"]
            prefix = f"LLMOPS_{stage.split('-')[0].upper()}_"
            assert {f"{prefix}HEALTH_HOST", f"{prefix}HEALTH_PORT"} <= set(env), stage
            assert f"PLAINTEXT://{env['LLMOPS_KAFKA_BOOTSTRAP']}" == listeners
            foreign = {v for v in env if v.startswith("LLMOPS_") and v.split("_")[1].lower() in STAGES}
            assert all(v.startswith(prefix) for v in foreign), (stage, foreign)

    def test_every_variable_is_a_setting(self) -> None:
        """Every LLMOPS_ variable named anywhere in the deployment files is a setting some process reads."""
        used = set().union(*(re.findall(r"\bLLMOPS_[A-Z0-9_]+", text) for text in deploy_files()))
        assert len(used) > 10
        assert used <= known_variables()

    def test_every_topic_named_is_a_real_topic(self) -> None:
        """Any llmops.<name> topic in the deployment files is in TopicSettings, and the broker creates none itself."""
        topics = set(TopicSettings().all())
        named = set().union(*(re.findall(r"\bllmops\.[a-z]+\b", text) for text in deploy_files()))
        named -= {"llmops.json", "llmops.yml", "llmops.io"}
        assert named
        assert named <= topics
        services = compose()["services"]
        assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert services["topics"]["command"] == ["llmops", "topics"]  # creates TopicSettings().all()
        for stage in STAGES:
            assert services[stage]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


class TestComposeOperations:
    def test_stages_scale(self) -> None:
        """No fixed container name or host port on a stage, so `--scale <stage>=N` works."""
        services = compose()["services"]
        for stage in [*STAGES, "inference-gpu"]:
            assert "container_name" not in services[stage]
            assert "ports" not in services[stage]

    def test_long_running_services_are_health_checked(self) -> None:
        """Every service but the one-shot jobs has a health check, and what waits on one waits for it healthy."""
        services = compose()["services"]
        for name, svc in services.items():
            if name not in ONE_SHOT:
                assert "healthcheck" in svc, name
            for dep, cond in svc.get("depends_on", {}).items():
                expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
                assert cond["condition"] == expected, (name, dep)

    def test_monitoring_ports_stay_on_localhost(self) -> None:
        """Prometheus and Grafana publish their UI on 127.0.0.1 only."""
        services = compose()["services"]
        for name in ("prometheus", "grafana"):
            assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"]), name
