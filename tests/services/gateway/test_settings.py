"""Gateway settings: API keys anyone could guess stop the gateway at start outside dev mode."""

from __future__ import annotations

import pytest

from services.gateway.auth import AuthConfig, Authenticator, KeyEntry, TenantConfig, hash_key, new_key
from services.gateway.settings import GatewaySettings
from shared.runtime.secrets import DefaultSecretError
from shared.runtime.settings import CoreSettings
from shared.tenants import TenantConfigError


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


class TestTenantConfiguration:
    def test_keys_and_tenants_from_the_configuration(self) -> None:
        """The gateway serves the configuration's keys, models, templates and rate limits."""
        key = new_key()
        core = CoreSettings(
            tenants={
                "tenants": {
                    "acme": {
                        "models": ["gemma-3-270m"],
                        "grounding": {"template": "concise"},
                        "gateway": {
                            "rate_limit": {"requests_per_minute": 6, "burst": 2},
                            "keys": [{"sha256": hash_key(key), "name": "ci"}],
                        },
                    }
                }
            }
        )
        auth = Authenticator(GatewaySettings(core=core).load_auth())
        principal = auth.authenticate(key)
        assert principal is not None
        assert principal.tenant == "acme"
        assert principal.key_name == "ci"
        assert principal.config.models == ["gemma-3-270m"]
        assert principal.config.template == "concise"
        assert principal.rate_limit.requests_per_minute == 6

    def test_the_auth_file_is_merged(self) -> None:
        """Keys kept in the auth file act for a tenant the configuration describes."""
        key = new_key()
        core = CoreSettings(tenants={"tenants": {"acme": {"grounding": {"template": "concise"}}}})
        old = AuthConfig(keys=[KeyEntry(sha256=hash_key(key), tenant="acme")])
        principal = Authenticator(GatewaySettings(core=core, auth=old).load_auth()).authenticate(key)
        assert principal is not None
        assert principal.config.template == "concise"

    def test_auth_file_disagreeing_fails(self) -> None:
        """A tenant's template set differently by the auth file and the configuration fails, naming both."""
        core = CoreSettings(tenants={"tenants": {"acme": {"grounding": {"template": "concise"}}}})
        old = AuthConfig(tenants={"acme": TenantConfig(template="default")})
        with pytest.raises(TenantConfigError, match=r'grounding.template is "concise" in LLMOPS_TENANTS but'):
            GatewaySettings(core=core, auth=old).load_auth()

    def test_an_unknown_model_fails_at_start(self) -> None:
        """A tenant's model the registry lacks stops the gateway at start."""
        core = CoreSettings(tenants={"tenants": {"acme": {"models": ["gpt-9"]}}})
        with pytest.raises(TenantConfigError, match="tenant 'acme': models: 'gpt-9'"):
            GatewaySettings(core=core).load_auth()
