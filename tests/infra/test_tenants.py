"""The shipped deployments carry a tenant configuration that every stage accepts, with the reply-topic policy on.

Before issue 25 none of docker-compose.yml, docker-compose.secure.yml and the Kubernetes overlays set the
preprocess tenants file (LLMOPS_PREPROCESS_TENANTS_PATH), so the reply-topic policy the docs and the tenant
KafkaUser promise (answers only on the tenant's own topics) was never configured: only the built-in
patterns applied, which let any tenant name the shared llmops.responses topic every default client reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from services.preprocess.reply_policy import ReplyTopicPolicy
from services.preprocess.settings import PreprocessSettings
from services.preprocess.tenant_switches import tenant_policy
from shared.cli.tenants import load_checked
from tests.infra.helpers import ROOT, compose, settings_env
from tests.infra.kustomize import build

OVERLAYS = sorted((ROOT / "infra/k8s/overlays").iterdir())


def secure_compose_env(service: str) -> dict[str, str]:
    """A service's environment with the secure override on top (compose merges maps)."""
    base = compose()["services"][service].get("environment", {})
    secure = yaml.safe_load((ROOT / "docker-compose.secure.yml").read_text())["services"][service].get(
        "environment", {}
    )
    return {k: str(v) for k, v in {**base, **secure}.items() if k.startswith("LLMOPS_TENANTS")}


def compose_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment", {})
    return {k: str(v) for k, v in env.items() if k.startswith("LLMOPS_TENANTS")}


def k8s_env(overlay: Path) -> dict[str, str]:
    """The tenant variables of the llmops-config ConfigMap every stage and the gateway read (envFrom)."""
    for obj in build(overlay):
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("llmops-config"):
            return {k: v for k, v in obj["data"].items() if k.startswith("LLMOPS_TENANTS")}
    raise AssertionError(f"no llmops-config in {overlay}")


DEPLOYMENTS: dict[str, Mapping[str, str]] = {
    "docker-compose.yml": compose_env("preprocess"),
    "docker-compose.secure.yml": secure_compose_env("preprocess"),
    **{f"k8s/{overlay.name}": k8s_env(overlay) for overlay in OVERLAYS},
}
SECURE = ["docker-compose.secure.yml", "k8s/secure"]


def reply_policy(env: Mapping[str, str]) -> ReplyTopicPolicy:
    with settings_env(env):
        settings = PreprocessSettings()
        topics = settings.core.topics
        return ReplyTopicPolicy(
            tenant_policy(settings), default_topic=topics.responses, shadow_topic=topics.shadow_responses
        )


class TestShippedTenantConfiguration:
    @pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))
    def test_the_reply_topic_policy_is_on(self, deployment: str) -> None:
        """Preprocess gets configured reply topics: a tenant may not take answers on the shared topic or another's."""
        policy = reply_policy(DEPLOYMENTS[deployment])
        assert policy.configured, deployment
        assert policy.allowed("acme", "llmops.responses.acme")
        assert policy.allowed("acme", "llmops.responses.gateway-gateway-0")  # the gateway answers for it
        assert not policy.allowed("acme", "llmops.responses")  # every default client reads it
        assert not policy.allowed("acme", "llmops.responses.globex")
        assert policy.allowed("default", "llmops.responses")

    @pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))
    def test_every_check_passes(self, deployment: str) -> None:
        """`llmops tenants check` accepts it: the registry's models, the templates, no old variable disagreeing."""
        with settings_env(DEPLOYMENTS[deployment]):
            config, _ = load_checked()
        assert {"default", "acme"} <= set(config.tenants)

    @pytest.mark.parametrize("deployment", SECURE)
    def test_secure_profiles_name_tenants_by_their_topics(self, deployment: str) -> None:
        """The secure profiles give acme its own request topic from the tenant configuration."""
        with settings_env(DEPLOYMENTS[deployment]):
            assert PreprocessSettings().core.topics.tenant_request_topics() == {"llmops.requests.acme": "acme"}

    def test_no_old_tenant_variable_is_shipped(self) -> None:
        """The deprecated per-stage tenant variables are set nowhere: one configuration."""
        old = ("LLMOPS_PREPROCESS_TENANTS_PATH", "LLMOPS_TOPIC_REQUEST_TENANTS", "LLMOPS_GROUNDING_TENANT_TEMPLATES")
        files = [ROOT / "docker-compose.yml", ROOT / "docker-compose.secure.yml", *(ROOT / "infra/k8s").rglob("*.yaml")]
        for path in files:
            text = path.read_text()
            assert not [name for name in (*old, "LLMOPS_CACHE_TENANTS") if name in text], path
