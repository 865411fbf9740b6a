"""Known default secrets are refused at start outside dev mode, naming the setting and never the value."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from shared.runtime.secrets import (
    DefaultSecretError,
    default_api_key_hashes,
    is_known_default,
    refuse_default_secrets,
)
from shared.runtime.settings import CoreSettings, KafkaSettings
from tests.infra.helpers import settings_env

STRONG = "9f2c1e7a4b0d8e3f6a5c2b1d0e9f8a7c"  # a test secret that is not a known default


def sasl(password: str | None = None, **extra: object) -> KafkaSettings:
    return KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="llmops-preprocess",
        sasl_password=None if password is None else SecretStr(password),
        **extra,  # type: ignore[arg-type]
    )


class TestRefuseDefaultSecrets:
    @pytest.mark.parametrize("value", ["", "admin", "Admin ", "changeme", "password", "secret", "llmops"])
    def test_known_defaults_are_refused(self, value: str) -> None:
        """Empty, well-known and product-default values raise DefaultSecretError naming the setting."""
        assert is_known_default(value)
        with pytest.raises(DefaultSecretError, match=r"^LLMOPS_X: a known default secret"):
            refuse_default_secrets({"LLMOPS_X": SecretStr(value)}, dev_mode=False)

    def test_the_value_is_never_in_the_message(self) -> None:
        """The error names every bad setting, sorted, and shows none of the values."""
        with pytest.raises(DefaultSecretError) as info:
            refuse_default_secrets({"LLMOPS_B": "changeme", "LLMOPS_A": SecretStr("admin")}, dev_mode=False)
        assert str(info.value).startswith("LLMOPS_A, LLMOPS_B:")
        assert "changeme" not in str(info.value)
        assert "admin" not in str(info.value).split(":", 1)[1].split(";")[0]

    def test_real_and_unset_secrets_pass(self) -> None:
        """A strong secret and an unset setting (None: its own rules decide) pass."""
        refuse_default_secrets({"LLMOPS_A": SecretStr(STRONG), "LLMOPS_B": None}, dev_mode=False)

    def test_dev_mode_accepts_anything(self) -> None:
        """On a development machine the check is off."""
        refuse_default_secrets({"LLMOPS_A": SecretStr("admin"), "LLMOPS_B": ""}, dev_mode=True)

    def test_api_key_hashes_cover_documented_examples(self) -> None:
        """The hashes include the example keys of the docs (auth.example.yaml, the auth module's 'password')."""
        hashes = default_api_key_hashes()
        for key in ("sk-mykey", "password", "admin", ""):
            assert hashlib.sha256(key.encode()).hexdigest() in hashes
        assert hashlib.sha256(STRONG.encode()).hexdigest() not in hashes


class TestCoreSettings:
    def test_embedded_defaults_start(self) -> None:
        """The defaults (PLAINTEXT, no secrets) need no dev mode: `make run` works as before."""
        with settings_env({}):
            core = CoreSettings()
        assert core.dev_mode is False

    @pytest.mark.parametrize("password", ["admin", "", "changeme"])
    def test_a_default_sasl_password_stops_the_process(self, password: str) -> None:
        """SASL with a default or empty password fails when settings load, naming the variable only."""
        with pytest.raises(ValidationError, match="LLMOPS_KAFKA_SASL_PASSWORD: a known default") as info:
            CoreSettings(kafka=sasl(password))
        if password:
            assert password not in str(info.value)

    def test_a_default_password_from_a_file_is_refused_too(self, tmp_path: Path) -> None:
        """The password file's content (LLMOPS_KAFKA_SASL_PASSWORD_FILE) is checked like an inline password."""
        secret = tmp_path / "password"
        secret.write_text("changeme\n")
        env = {
            "LLMOPS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "LLMOPS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "LLMOPS_KAFKA_SASL_USERNAME": "svc",
            "LLMOPS_KAFKA_SASL_PASSWORD_FILE": str(secret),
        }
        with settings_env(env), pytest.raises(ValidationError, match="LLMOPS_KAFKA_SASL_PASSWORD"):
            CoreSettings()
        secret.write_text(STRONG)
        with settings_env(env):
            assert CoreSettings().kafka.sasl_password == SecretStr(STRONG)

    def test_a_default_key_password_is_refused(self, tmp_path: Path) -> None:
        """The mTLS key's password is checked as well."""
        cert = tmp_path / "c.pem"
        with pytest.raises(ValidationError, match="LLMOPS_KAFKA_SSL_KEY_PASSWORD"):
            CoreSettings(
                kafka=KafkaSettings(
                    security_protocol="SSL", ssl_certfile=cert, ssl_keyfile=cert, ssl_key_password=SecretStr("secret")
                )
            )

    def test_a_real_password_starts(self) -> None:
        """A strong SASL password passes."""
        assert CoreSettings(kafka=sasl(STRONG)).kafka.sasl_password == SecretStr(STRONG)

    def test_dev_mode_from_the_environment_allows_it(self) -> None:
        """LLMOPS_DEV_MODE=true lets a development machine use a default password."""
        env = {
            "LLMOPS_DEV_MODE": "true",
            "LLMOPS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "LLMOPS_KAFKA_SASL_MECHANISM": "PLAIN",
            "LLMOPS_KAFKA_SASL_USERNAME": "dev",
            "LLMOPS_KAFKA_SASL_PASSWORD": "admin",
        }
        with settings_env(env):
            core = CoreSettings()
        assert core.dev_mode is True
        with settings_env({**env, "LLMOPS_DEV_MODE": "false"}), pytest.raises(ValidationError):
            CoreSettings()
