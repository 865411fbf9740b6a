"""Gateway settings: API keys anyone could guess stop the gateway at start outside dev mode."""

from __future__ import annotations

import pytest

from services.gateway.auth import AuthConfig, KeyEntry, hash_key, new_key
from services.gateway.settings import GatewaySettings
from shared.messaging.secrets import DefaultSecretError
from shared.messaging.settings import CoreSettings


def settings(*keys: str, dev_mode: bool = False) -> GatewaySettings:
    entries = [KeyEntry(sha256=hash_key(k), tenant="acme", name=f"key-{i}") for i, k in enumerate(keys)]
    return GatewaySettings(core=CoreSettings(dev_mode=dev_mode), auth=AuthConfig(keys=entries))


class TestDefaultKeys:
    @pytest.mark.parametrize("key", ["sk-mykey", "password", "admin", "changeme"])
    def test_a_documented_or_default_key_is_refused(self, key: str) -> None:
        """load_auth raises DefaultSecretError naming the key's label and tenant, never the key."""
        with pytest.raises(DefaultSecretError, match="key-1 of tenant acme: a known default key") as info:
            settings(new_key(), key).load_auth()
        assert key not in str(info.value).split(":")[0]
        assert "key-0" not in str(info.value)

    def test_random_keys_pass(self) -> None:
        """Keys made by `python -m services.gateway.auth` load."""
        assert len(settings(new_key(), new_key()).load_auth().keys) == 2

    def test_dev_mode_accepts_them(self) -> None:
        """On a development machine a default key is accepted."""
        assert len(settings("sk-mykey", dev_mode=True).load_auth().keys) == 1
