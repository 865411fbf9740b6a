from pathlib import Path

import pytest

from services.preprocess.settings import PreprocessSettings
from services.preprocess.tenant_switches import TenantPolicyFile, tenant_policy
from shared.contracts.envelope import ChatMessage, Envelope, Request
from shared.runtime.settings import CoreSettings
from shared.tenants import TenantConfigError


def envelope(tenant: str = "default", **metadata: str) -> Envelope:
    return Envelope(tenant=tenant, request=Request(messages=[ChatMessage(role="user", content="x")], metadata=metadata))


class TestTenantPolicyFile:
    def test_precedence(self, tmp_path: Path) -> None:
        """The request's switch beats the tenant's, which beats the default."""
        path = tmp_path / "tenants.yaml"
        path.write_text("tenants:\n  acme:\n    typo_correction: false\n")
        policy = TenantPolicyFile.load(path)
        assert policy.typo_correction(envelope(), default=True) is True
        assert policy.typo_correction(envelope("acme"), default=True) is False
        assert policy.typo_correction(envelope("acme", typo_correction="on"), default=True) is True
        assert policy.typo_correction(envelope(typo_correction="off"), default=True) is False
        assert policy.typo_correction(envelope(typo_correction="maybe"), default=False) is False

    def test_no_file(self) -> None:
        """Without a file every tenant follows the default."""
        assert TenantPolicyFile.load(None).typo_correction(envelope("acme"), default=True) is True


class TestTenantPolicy:
    def test_reads_preprocess_part_of_the_configuration(self) -> None:
        """tenant_policy gives the configuration's typo switch, quotas and reply topics."""
        core = CoreSettings(
            tenants={
                "default_reply_topics": ["llmops.responses.{tenant}"],
                "tenants": {
                    "acme": {
                        "preprocess": {"typo_correction": False},
                        "quota": {"requests_per_minute": 7, "tokens_per_day": 70},
                        "reply_topics": ["llmops.responses.acme.*"],
                    }
                },
            }
        )
        policy = tenant_policy(PreprocessSettings(core=core))
        assert policy.typo_correction(envelope("acme"), default=True) is False
        assert policy.tenants["acme"].requests_per_minute == 7
        assert policy.tenants["acme"].tokens_per_day == 70
        assert policy.tenants["acme"].reply_topics == ["llmops.responses.acme.*"]
        assert policy.default_reply_topics == ["llmops.responses.{tenant}"]

    def test_nothing_configured_is_as_before(self) -> None:
        """No configuration and no old file: an empty policy (the built-in reply patterns apply)."""
        assert tenant_policy(PreprocessSettings(core=CoreSettings())) == TenantPolicyFile()

    def test_the_old_file_is_merged(self, tmp_path: Path) -> None:
        """LLMOPS_PREPROCESS_TENANTS_PATH still works, merged with the configuration."""
        path = tmp_path / "tenants.yaml"
        path.write_text('default_reply_topics: ["x.{tenant}"]\ntenants: {acme: {tokens_per_day: 5}}\n')
        core = CoreSettings(tenants={"tenants": {"acme": {"preprocess": {"typo_correction": False}}}})
        policy = tenant_policy(PreprocessSettings(core=core, tenants_path=path))
        assert policy.tenants["acme"].tokens_per_day == 5
        assert policy.tenants["acme"].typo_correction is False
        assert policy.default_reply_topics == ["x.{tenant}"]

    def test_old_file_disagreeing_fails(self, tmp_path: Path) -> None:
        """The old file and the configuration setting one quota differently fail, naming both."""
        path = tmp_path / "tenants.yaml"
        path.write_text("tenants: {acme: {requests_per_minute: 5}}\n")
        core = CoreSettings(tenants={"tenants": {"acme": {"quota": {"requests_per_minute": 6}}}})
        with pytest.raises(TenantConfigError, match=r"tenant 'acme': quota.requests_per_minute is 6 in LLMOPS_TENANTS"):
            tenant_policy(PreprocessSettings(core=core, tenants_path=path))

    def test_unknown_model_fails_at_start(self) -> None:
        """A tenant's model the registry lacks stops preprocess at start."""
        core = CoreSettings(tenants={"tenants": {"acme": {"models": ["gpt-9"]}}})
        with pytest.raises(TenantConfigError, match="tenant 'acme': models: 'gpt-9'"):
            tenant_policy(PreprocessSettings(core=core))
