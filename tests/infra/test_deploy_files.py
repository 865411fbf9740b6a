"""The deployment files are checked offline: structure always, `docker-compose config` when it is installed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from services.gateway.auth import AuthConfig
from shared.stack.embedded import STAGES
from shared.tenants import TenantsConfig
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
        assert config.tenants == {}  # what tenants may use is in the tenant configuration (LLMOPS_TENANTS)
        tenants = TenantsConfig.parse(json.loads(compose["x-llmops"]["environment"]["LLMOPS_TENANTS"]))
        assert tenants.models("acme") == ["gemma-3-270m"]

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


def dockerfiles() -> list[Path]:
    """Every Dockerfile in the repository (infra/, services/) and every one docker-compose.yml builds from."""
    found = {*ROOT.glob("infra/**/Dockerfile*"), *ROOT.glob("services/**/Dockerfile*")}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for svc in compose["services"].values():
        build = svc.get("build")
        if isinstance(build, dict):
            found.add(ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile"))
    return sorted(p.resolve() for p in found)


def final_stage(path: Path) -> list[tuple[str, str]]:
    """The instructions (keyword, arguments) of the last build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, args = stripped.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


class TestDockerfiles:
    def test_there_is_a_dockerfile_and_compose_builds_only_existing_ones(self) -> None:
        """docker-compose.yml builds from Dockerfiles that exist."""
        assert dockerfiles()
        assert all(p.is_file() for p in dockerfiles())

    @pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
    def test_the_image_runs_as_a_non_root_user(self, path: Path) -> None:
        """The final stage's last USER is a non-root user the file creates with a non-zero uid."""
        stage = final_stage(path)
        users = [args for keyword, args in stage if keyword == "USER"]
        assert users, f"{path}: no USER in the final stage (the image would run as root)"
        user = users[-1].split(":")[0]
        assert user not in {"root", "0"}
        runs = " ".join(args for keyword, args in stage if keyword == "RUN")
        created = re.search(rf"useradd\b[^;&|]*--uid (\d+)[^;&|]*\b{re.escape(user)}\b", runs)
        assert created, f"{path}: USER {user} is not created with an explicit uid"
        assert int(created.group(1)) != 0
        # Only the data dir is the user's: the code and the virtualenv stay read-only to the service.
        assert re.findall(r"chown\s+(?:-R\s+)?\S+\s+(\S+)", runs) == ["/data"]

    def test_a_missing_user_is_caught(self, tmp_path: Path) -> None:
        """A Dockerfile whose final stage has no USER (only an earlier stage does) fails the check."""
        path = tmp_path / "Dockerfile"
        path.write_text("FROM a AS build\nUSER nobody\nFROM b\nRUN true\n")
        assert [k for k, _ in final_stage(path) if k == "USER"] == []
