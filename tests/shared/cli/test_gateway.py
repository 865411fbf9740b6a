import hashlib
import json
from pathlib import Path

import pytest

from shared.cli.gateway import dev_auth_env, gateway_banner


class TestDevAuth:
    def test_a_fresh_dev_key_when_no_keys_are_configured(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without configured keys `llmops up` makes a random key and gives the gateway only its hash."""
        monkeypatch.delenv("LLMOPS_GATEWAY_AUTH", raising=False)
        monkeypatch.delenv("LLMOPS_GATEWAY_AUTH_FILE", raising=False)
        env, key = dev_auth_env(tmp_path / ".env")
        assert key is not None
        auth = json.loads(env["LLMOPS_GATEWAY_AUTH"])
        assert auth["keys"][0]["sha256"] == hashlib.sha256(key.encode()).hexdigest()
        assert key not in env["LLMOPS_GATEWAY_AUTH"]
        assert dev_auth_env(tmp_path / ".env")[1] != key
        assert f"/#key={key}" in gateway_banner("http://127.0.0.1:8000", key)

    def test_configured_keys_are_the_only_ones(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A key file in the environment or in .env means no dev key is made."""
        monkeypatch.delenv("LLMOPS_GATEWAY_AUTH", raising=False)
        monkeypatch.setenv("LLMOPS_GATEWAY_AUTH_FILE", "/etc/keys.yaml")
        assert dev_auth_env(tmp_path / ".env") == ({}, None)
        monkeypatch.delenv("LLMOPS_GATEWAY_AUTH_FILE")
        (tmp_path / ".env").write_text("LLMOPS_GATEWAY_AUTH_FILE=/etc/keys.yaml\n")
        assert dev_auth_env(tmp_path / ".env") == ({}, None)
        assert "#key=" not in gateway_banner("http://h:1", None)
