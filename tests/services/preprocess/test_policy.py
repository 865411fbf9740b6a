from pathlib import Path

from services.preprocess.policy import TenantPolicyFile
from shared.messaging.envelope import ChatMessage, Envelope, Request


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
