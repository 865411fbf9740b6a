"""The deployment files are checked offline: structure always, `docker-compose config` when it is installed."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from services.gateway.auth import AuthConfig
from shared.stack.embedded import STAGES
from tests.infra.helpers import known_variables

ROOT = Path(__file__).resolve().parents[2]


class TestComposeFile:
    def test_every_stage_runs_its_module_with_a_readiness_check(self) -> None:
        """Each stage service runs `python -m services.<stage>` and is health-checked on /readyz."""
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        services = compose["services"]
        for stage in STAGES:
            assert services[stage]["command"] == ["python", "-m", f"services.{stage}"]
            assert "/readyz" in " ".join(services[stage]["healthcheck"]["test"])
        assert services["kafka"]["image"].startswith("apache/kafka")
        assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert "gpu" in services["inference-gpu"]["profiles"]

    def test_gateway_is_health_checked_and_its_auth_file_parses(self) -> None:
        """The gateway service runs its module, is checked on /healthz, and the example auth file is valid."""
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        gateway = compose["services"]["gateway"]
        assert gateway["command"] == ["python", "-m", "services.gateway"]
        assert "/healthz" in " ".join(gateway["healthcheck"]["test"])
        assert gateway["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        config = AuthConfig.from_yaml(ROOT / "infra" / "gateway" / "auth.example.yaml")
        assert config.keys == []  # no working key ships with the example
        assert config.tenants["acme"].models == ["gemma-3-270m"]

    def test_compose_variables_are_real_settings(self) -> None:
        """Every LLMOPS_ variable the compose file sets is a setting some service reads."""
        text = (ROOT / "docker-compose.yml").read_text()
        used = set(re.findall(r"^\s*(LLMOPS_[A-Z0-9_]+):", text, re.MULTILINE))
        assert used
        assert used <= known_variables()

    @pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
    def test_docker_compose_config_validates(self) -> None:
        """docker-compose accepts the file, with and without the gpu profile."""
        for extra in ([], ["--profile", "gpu"]):
            subprocess.run(
                ["docker-compose", *extra, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], check=True
            )


class TestEnvExample:
    def test_documents_only_real_settings(self) -> None:
        """Every variable in .env.example (set or commented out) is a setting, and it parses."""
        text = (ROOT / ".env.example").read_text()
        names = set(re.findall(r"^#? ?(LLMOPS_[A-Z0-9_]+)=", text, re.MULTILINE))
        assert len(names) > 30
        assert names <= known_variables()
        values = dotenv_values(ROOT / ".env.example")
        assert values["LLMOPS_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
        assert values["LLMOPS_TOPIC_PREFIX"] == "llmops."
