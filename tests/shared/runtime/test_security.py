import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from aiokafka.errors import SaslAuthenticationFailed
from faststream.kafka.security import parse_security
from pydantic import SecretStr, ValidationError

from services.gateway import gateway as gateway_module
from services.gateway.gateway import Gateway
from services.gateway.settings import GatewaySettings
from shared.client import BROKER_ERRORS, LlmopsClient
from shared.runtime import security
from shared.runtime.broker import make_broker
from shared.runtime.security import (
    BrokerAuthError,
    check_broker_access,
    client_security_kwargs,
    faststream_security,
)
from shared.runtime.settings import CoreSettings, KafkaSettings
from shared.stack.embedded import free_port
from shared.stack.tansu import TansuBroker

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "s3cret-Pa55"  # noqa: S105 - a test secret that must never appear in logs or reprs


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate (also the CA) and its key, encrypted with PASSWORD."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "client.pem", directory / "client.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=llmops-test",
            "-passout",
            f"pass:{PASSWORD}",
        ],
        check=True,
        capture_output=True,
    )
    return {"cert": cert, "key": key}


def _sasl(protocol: str, mechanism: str, **extra: object) -> KafkaSettings:
    fields: dict[str, object] = {
        "security_protocol": protocol,
        "sasl_mechanism": mechanism,
        "sasl_username": "svc-preprocess",
        "sasl_password": SecretStr(PASSWORD),
        **extra,
    }
    return KafkaSettings(**fields)  # type: ignore[arg-type]


class TestSettings:
    def test_plaintext_is_the_default(self) -> None:
        """No security settings: plaintext, no SSL context, no SASL arguments (the embedded broker)."""
        assert client_security_kwargs(KafkaSettings()) == {"security_protocol": "PLAINTEXT", "ssl_context": None}
        assert faststream_security(KafkaSettings()) is None

    def test_password_from_a_file(self, tmp_path: Path) -> None:
        """sasl_password_file is read at load, one trailing newline dropped."""
        secret = tmp_path / "password"
        secret.write_text(PASSWORD + "\n")
        settings = _sasl("SASL_SSL", "SCRAM-SHA-512", sasl_password=None, sasl_password_file=secret)
        assert settings.sasl_password is not None
        assert settings.sasl_password.get_secret_value() == PASSWORD

    def test_password_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LLMOPS_KAFKA_SASL_PASSWORD is read as a SecretStr."""
        monkeypatch.setenv("LLMOPS_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
        monkeypatch.setenv("LLMOPS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
        monkeypatch.setenv("LLMOPS_KAFKA_SASL_USERNAME", "svc")
        monkeypatch.setenv("LLMOPS_KAFKA_SASL_PASSWORD", PASSWORD)
        settings = KafkaSettings()
        assert isinstance(settings.sasl_password, SecretStr)
        assert client_security_kwargs(settings)["sasl_plain_password"] == PASSWORD

    def test_secrets_never_in_reprs(self, tmp_path: Path) -> None:
        """Neither the SASL password nor the key password shows in the settings' repr, str or dump."""
        settings = _sasl("SASL_SSL", "PLAIN", ssl_key_password=SecretStr(PASSWORD))
        assert PASSWORD not in repr(settings)
        assert PASSWORD not in str(settings)
        assert PASSWORD not in settings.model_dump_json()

    def test_inline_and_file_password_conflict(self, tmp_path: Path) -> None:
        """A password given twice (and different) is refused: which one wins would be a guess."""
        secret = tmp_path / "password"
        secret.write_text(PASSWORD + "-other")
        with pytest.raises(ValidationError, match="not both"):
            _sasl("SASL_SSL", "PLAIN", sasl_password_file=secret)

    def test_password_file_in_nested_settings(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """CoreSettings and a stage's settings load LLMOPS_KAFKA_SASL_PASSWORD_FILE (their nested KafkaSettings is
        validated again with the password already read: not a second password)."""
        secret = tmp_path / "password"
        secret.write_text(PASSWORD + "\n")
        for name, value in {
            "SECURITY_PROTOCOL": "SASL_SSL",
            "SASL_MECHANISM": "SCRAM-SHA-512",
            "SASL_USERNAME": "svc",
            "SASL_PASSWORD_FILE": str(secret),
        }.items():
            monkeypatch.setenv(f"LLMOPS_KAFKA_{name}", value)
        core = CoreSettings()
        assert core.kafka.sasl_password is not None
        assert core.kafka.sasl_password.get_secret_value() == PASSWORD
        assert CoreSettings(kafka=core.kafka).kafka.sasl_password == core.kafka.sasl_password

    def test_missing_password_file(self, tmp_path: Path) -> None:
        """An unreadable password file fails at load, naming the file."""
        with pytest.raises(ValidationError, match=r"sasl_password_file .*cannot be read"):
            _sasl("SASL_SSL", "PLAIN", sasl_password=None, sasl_password_file=tmp_path / "absent")

    @pytest.mark.parametrize(
        "fields",
        [
            {"security_protocol": "SASL_SSL"},
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            {"security_protocol": "PLAINTEXT", "sasl_mechanism": "PLAIN"},
            {
                "security_protocol": "SASL_PLAINTEXT",
                "ssl_cafile": "/etc/ca.pem",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": "p",
            },
            {"security_protocol": "SSL", "ssl_keyfile": "/etc/key.pem"},
        ],
    )
    def test_half_configured_security_is_refused(self, fields: dict[str, object]) -> None:
        """Incomplete or contradictory security settings fail at load instead of silently connecting in plaintext."""
        with pytest.raises(ValidationError):
            KafkaSettings(**fields)  # type: ignore[arg-type]


class TestClientKwargs:
    @pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    def test_sasl_plaintext(self, mechanism: str) -> None:
        """SASL_PLAINTEXT: mechanism and credentials, no SSL context."""
        assert client_security_kwargs(_sasl("SASL_PLAINTEXT", mechanism)) == {
            "security_protocol": "SASL_PLAINTEXT",
            "ssl_context": None,
            "sasl_mechanism": mechanism,
            "sasl_plain_username": "svc-preprocess",
            "sasl_plain_password": PASSWORD,
        }

    @pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    def test_sasl_ssl_verifies_the_broker(self, mechanism: str, tls_files: dict[str, Path]) -> None:
        """SASL_SSL: credentials plus an SSL context that checks the broker's certificate against the CA file."""
        kwargs = client_security_kwargs(_sasl("SASL_SSL", mechanism, ssl_cafile=tls_files["cert"]))
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == mechanism
        context = kwargs["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "llmops-test"),),)]

    def test_mtls_loads_the_client_certificate(self, tls_files: dict[str, Path]) -> None:
        """SSL with a client certificate and an encrypted key: the key password unlocks it."""
        settings = KafkaSettings(
            security_protocol="SSL",
            ssl_cafile=tls_files["cert"],
            ssl_certfile=tls_files["cert"],
            ssl_keyfile=tls_files["key"],
            ssl_key_password=SecretStr(PASSWORD),
        )
        kwargs = client_security_kwargs(settings)
        assert set(kwargs) == {"security_protocol", "ssl_context"}
        assert kwargs["security_protocol"] == "SSL"

    def test_mtls_wrong_key_password(self, tls_files: dict[str, Path]) -> None:
        """A wrong key password is a clear BrokerAuthError naming the files, never the password."""
        settings = KafkaSettings(
            security_protocol="SSL",
            ssl_certfile=tls_files["cert"],
            ssl_keyfile=tls_files["key"],
            ssl_key_password=SecretStr("wrong-" + PASSWORD),
        )
        with pytest.raises(BrokerAuthError, match="cannot load Kafka TLS files") as info:
            client_security_kwargs(settings)
        assert PASSWORD not in str(info.value)

    @pytest.mark.parametrize(
        ("protocol", "mechanism"),
        [("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-256"), ("SASL_SSL", "SCRAM-SHA-512"), ("SSL", None)],
    )
    def test_faststream_broker_gets_the_same_mapping(
        self, protocol: str, mechanism: str | None, tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The services' FastStream broker ends with exactly the kwargs every other client gets."""
        context = ssl.create_default_context()
        monkeypatch.setattr(security, "_ssl_context", lambda _settings: context)
        if mechanism is None:
            settings = KafkaSettings(security_protocol="SSL", ssl_cafile=tls_files["cert"])
        else:
            settings = _sasl(protocol, mechanism)
        assert parse_security(faststream_security(settings)) == client_security_kwargs(settings)
        broker = make_broker(settings, client_id="test")
        assert broker._connection_kwargs["security_protocol"] == protocol  # what connect() will pass


class TestCheckBrokerAccess:
    async def test_sasl_refusal_is_reported_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A broker answering SASL_AUTHENTICATION_FAILED is a BrokerAuthError naming the user, not the password."""
        calls = []

        async def refuse(*_args: object, **_kwargs: object) -> None:
            calls.append(1)
            raise SaslAuthenticationFailed

        monkeypatch.setattr(security, "create_conn", refuse)
        with pytest.raises(BrokerAuthError, match="'svc-preprocess' via SCRAM-SHA-512") as info:
            await check_broker_access(_sasl("SASL_PLAINTEXT", "SCRAM-SHA-512"), confirm_after_s=0)
        assert PASSWORD not in str(info.value)
        assert len(calls) == 2  # confirmed once, then final

    async def test_unreachable_broker_is_not_an_auth_failure(self) -> None:
        """Nothing listening: the check passes and leaves the failure to the client's own start."""
        await check_broker_access(KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}"), timeout_s=2)

    async def test_open_broker_lets_plaintext_in(self, tansu: str) -> None:
        """The embedded broker without authentication accepts a plaintext client."""
        await check_broker_access(KafkaSettings(bootstrap=tansu))


@pytest.fixture(scope="module")
async def tansu_with_auth(tmp_path_factory: pytest.TempPathFactory) -> object:
    broker = TansuBroker(
        "127.0.0.1", free_port(), log_path=tmp_path_factory.mktemp("tansu-auth") / "tansu.log", authentication=True
    )
    await broker.start()
    yield broker.bootstrap
    broker.stop()


class TestBrokerRequiringAuthentication:
    @pytest.mark.parametrize(
        "extra",
        [
            {},
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "nobody"},
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "nobody"},
        ],
    )
    async def test_refused_clients(self, tansu_with_auth: str, extra: dict[str, str]) -> None:
        """Tansu with --authentication refuses an unauthenticated client and unknown users, clearly."""
        if extra:
            extra = {**extra, "sasl_password": PASSWORD}
        settings = KafkaSettings(bootstrap=tansu_with_auth, **extra)  # type: ignore[arg-type]
        with pytest.raises(BrokerAuthError, match=f"Kafka broker {tansu_with_auth} "):
            await check_broker_access(settings, confirm_after_s=0.1)

    async def test_sdk_start_fails_clearly(self, tansu_with_auth: str) -> None:
        """The client SDK raises BrokerAuthError from start() (one of BROKER_ERRORS), not a bootstrap loop."""
        client = LlmopsClient(CoreSettings(kafka=KafkaSettings(bootstrap=tansu_with_auth)))
        with pytest.raises(BrokerAuthError):
            await client.start()
        assert BrokerAuthError in BROKER_ERRORS

    async def test_gateway_stays_not_ready_without_retrying(
        self, tansu_with_auth: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The gateway's connector logs one gateway.kafka_auth_failed and ends; the gateway stays not-ready."""
        attempts = []
        real_check = security.check_broker_access

        async def counted(settings: KafkaSettings) -> None:
            attempts.append(1)
            await real_check(settings, confirm_after_s=0.1)

        monkeypatch.setattr(gateway_module, "check_broker_access", counted)
        gateway = Gateway(GatewaySettings(core=CoreSettings(kafka=KafkaSettings(bootstrap=tansu_with_auth))))
        with structlog.testing.capture_logs() as logs:
            await gateway.start()
            assert gateway._connector is not None
            await asyncio.wait_for(gateway._connector, 30)  # it ends instead of looping
        assert not gateway.ready
        assert attempts == [1]
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["gateway.kafka_auth_failed"]
        await gateway.stop()

    @pytest.mark.e2e
    def test_service_exits_with_one_clear_error(self, tansu_with_auth: str, tmp_path: Path) -> None:
        """An unauthenticated service logs kafka.auth_failed once and exits 2 at once, no retry loop."""
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "LLMOPS_KAFKA_BOOTSTRAP": tansu_with_auth,
            "LLMOPS_LOG_FORMAT": "json",
            "LLMOPS_DATA_DIR": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-m", "services.postprocess"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 2, output[-2000:]
        assert output.count("kafka.auth_failed") == 1, output[-2000:]
        assert "requires authentication" in output
        assert "service.warm" not in output  # nothing heavy was loaded first


def test_structlog_is_not_given_the_password() -> None:
    """The settings object logged whole (a habit to guard against) renders the secret masked."""
    settings = _sasl("SASL_SSL", "PLAIN")
    rendered = structlog.processors.JSONRenderer(default=repr)(None, "info", {"event": "x", "kafka": settings})
    assert PASSWORD not in rendered
