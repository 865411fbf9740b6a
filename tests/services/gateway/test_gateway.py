"""The gateway's model resolution with registry aliases (no broker: the constructor connects nothing)."""

from __future__ import annotations

import pytest

from services.gateway.auth import AuthConfig, Principal, RateLimit, TenantConfig
from services.gateway.gateway import Gateway
from services.gateway.protocol import ApiError
from services.gateway.settings import GatewaySettings
from shared.models.registry import AliasVariant, ModelAlias
from tests.conftest import CHAT_MODEL, SMALL_MODEL, core_settings


@pytest.fixture
def gateway() -> Gateway:
    """A gateway whose registry has ``chat``: 90/10 between the chat and the small model."""
    gw = Gateway(GatewaySettings(core=core_settings(), replica="t", auth=AuthConfig()))
    variants = [AliasVariant(model=CHAT_MODEL, weight=90), AliasVariant(model=SMALL_MODEL, weight=10)]
    gw.registry = gw.registry.model_copy(update={"aliases": {"chat": ModelAlias(name="chat", variants=variants)}})
    return gw


def principal(*models: str) -> Principal:
    return Principal("acme", "k", "h", TenantConfig(models=list(models)), RateLimit())


class TestResolveModel:
    def test_an_alias_stays_an_alias(self, gateway: Gateway) -> None:
        """The gateway passes the alias on: preprocess picks the variant per conversation."""
        assert gateway.resolve_model(principal(), "chat") == "chat"
        assert gateway.resolve_model(principal("chat"), "chat") == "chat"

    def test_a_tenant_allow_list_names_the_alias(self, gateway: Gateway) -> None:
        """A tenant allowed only a variant may not ask for the alias (403), nor for an unknown name (404)."""
        with pytest.raises(ApiError) as err:
            gateway.resolve_model(principal(SMALL_MODEL), "chat")
        assert err.value.status == 403
        with pytest.raises(ApiError) as err:
            gateway.resolve_model(principal(), "chat-2")
        assert err.value.status == 404
