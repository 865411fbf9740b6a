"""Settings shared by every process (DESIGN.md §5): env prefix ``LLMOPS_``, embedded-stack defaults."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.runtime.secrets import refuse_default_secrets
from shared.tenants import TenantsConfig, TenantSource, merge_sources

__all__ = [
    "CoreSettings",
    "KafkaSettings",
    "StageSettings",
    "TopicSettings",
    "default_data_dir",
    "secret_from",
]


#: A tenant name that can be part of a topic name (Kafka allows A-Z a-z 0-9 . _ -).
_TENANT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def default_data_dir() -> Path:
    """Where models, stores and state live unless ``LLMOPS_DATA_DIR`` says otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmops"


class KafkaSettings(BaseSettings):
    """Kafka connection and client tuning (``LLMOPS_KAFKA_*``).

    The defaults are tuned for latency on the embedded Tansu broker, which does not
    answer long-poll fetches early: a low ``fetch_max_wait_ms`` is what keeps a hop
    in single-digit milliseconds.
    """

    model_config = SettingsConfigDict(env_prefix="LLMOPS_KAFKA_", env_file=".env", extra="ignore")

    bootstrap: str = Field(default="127.0.0.1:9092", description="Comma-separated host:port list.")
    client_id: str = "llmops"
    partitions: int = Field(default=4, ge=1, description="Partitions per topic when llmops creates topics.")
    replication_factor: int = Field(default=1, ge=1)
    fetch_max_wait_ms: int = Field(default=5, ge=0, description="Longest a fetch waits for data.")
    side_fetch_max_wait_ms: int = Field(
        default=100,
        ge=0,
        description=(
            "Fetch wait of the consumers off the request path (cache entries, usage, ingest commands):"
            " each idle consumer polls the broker 1000/wait times a second."
        ),
    )
    fetch_min_bytes: int = Field(default=1, ge=1)
    linger_ms: int = Field(default=0, ge=0, description="Producer batching delay; 0 sends at once.")
    acks: Literal["all", "1", "0"] = "all"
    enable_idempotence: bool = Field(
        default=True,
        description=(
            "Idempotent producers (no duplicates from a producer's own retries), as Kafka's clients default to."
            " The embedded Tansu refuses the handshake: `llmops up` turns it off for the services it starts there."
        ),
    )
    exactly_once: bool = Field(
        default=False,
        description=(
            "Each stage consumes, processes and produces in one Kafka transaction; consumers read committed data"
            " (Apache Kafka only: Tansu has no transactions). Off: at-least-once, duplicates dropped by request_id."
        ),
    )
    transaction_timeout_ms: int = Field(
        default=15000,
        ge=1000,
        description="How long a transaction left open by a killed replica holds back read_committed consumers.",
    )
    request_timeout_ms: int = Field(default=30000, ge=1000)
    session_timeout_ms: int = Field(default=10000, ge=1000)
    heartbeat_interval_ms: int = Field(default=1000, ge=100)
    max_poll_interval_ms: int = Field(default=300000, ge=1000)
    max_message_bytes: int = Field(default=1_048_576, ge=1024, description="Largest message value accepted.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT is dev only (the embedded Tansu broker has no TLS)."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="Required with SASL_PLAINTEXT and SASL_SSL."
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(default=None, description="Or sasl_password_file; never logged.")
    sasl_password_file: Path | None = Field(
        default=None, description="File holding the SASL password (a mounted secret); read at start."
    )
    ssl_cafile: Path | None = Field(
        default=None, description="CA bundle for the broker's certificate; system CAs when absent."
    )
    ssl_certfile: Path | None = Field(default=None, description="Client certificate (PEM) for mTLS.")
    ssl_keyfile: Path | None = Field(default=None, description="Client private key (PEM) for mTLS.")
    ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of ssl_keyfile; or ssl_key_password_file."
    )
    ssl_key_password_file: Path | None = Field(default=None, description="File holding the client key's password.")

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        """Read ``*_file`` secrets and refuse half-configured security (never fall back to plaintext silently)."""
        self.sasl_password = secret_from(self.sasl_password, self.sasl_password_file, "sasl_password")
        self.ssl_key_password = secret_from(self.ssl_key_password, self.ssl_key_password_file, "ssl_key_password")
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and (self.sasl_mechanism is None or not self.sasl_username or self.sasl_password is None):
            msg = f"security_protocol {self.security_protocol} needs sasl_mechanism, sasl_username and sasl_password"
            raise ValueError(msg)
        if not sasl and self.sasl_mechanism is not None:
            msg = f"sasl_mechanism {self.sasl_mechanism} needs security_protocol SASL_PLAINTEXT or SASL_SSL"
            raise ValueError(msg)
        if self.exactly_once and not self.enable_idempotence:
            msg = "exactly_once needs enable_idempotence (a transactional producer is idempotent)"
            raise ValueError(msg)
        tls = self.security_protocol in {"SSL", "SASL_SSL"}
        if not tls and any((self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)):
            msg = f"ssl_* files need security_protocol SSL or SASL_SSL, not {self.security_protocol}"
            raise ValueError(msg)
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            msg = "ssl_keyfile needs ssl_certfile (the client certificate)"
            raise ValueError(msg)
        return self


def secret_from(value: SecretStr | None, path: Path | None, name: str) -> SecretStr | None:
    """The secret given inline, or read from ``path`` (one trailing newline dropped); not both."""
    if path is None:
        return value
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{name}_file {path} cannot be read: {exc.strerror}"
        raise ValueError(msg) from None
    secret = SecretStr(text.removesuffix("\n").removesuffix("\r"))
    # Settings nested in others (CoreSettings.kafka) are validated again with the value already read from the
    # file: that is the same secret, not a second one.
    if value is not None and value != secret:
        msg = f"set {name} or {name}_file, not both"
        raise ValueError(msg)
    return secret


class TopicSettings(BaseSettings):
    """Topic names (``LLMOPS_TOPIC_*``); every name is the prefix plus a stem."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_TOPIC_", env_file=".env", extra="ignore")

    prefix: str = "llmops."
    request_tenants: list[str] = Field(
        default_factory=list,
        description=(
            "Tenants with a request topic of their own (<prefix>requests.<tenant>, JSON list): preprocess reads it "
            "and takes the tenant from its name; only that tenant's principal may write it."
        ),
    )

    @field_validator("request_tenants", mode="after")
    @classmethod
    def _tenant_names_fit_topics(cls, value: list[str]) -> list[str]:
        for tenant in value:
            if not _TENANT_NAME.match(tenant):
                msg = f"tenant {tenant!r} cannot name a topic: 1-64 of A-Z a-z 0-9 . _ -"
                raise ValueError(msg)
        return list(dict.fromkeys(value))

    def name(self, stem: str) -> str:
        """Full topic name for a stem such as ``requests``."""
        return f"{self.prefix}{stem}"

    @property
    def requests(self) -> str:
        """The ``requests`` topic."""
        return self.name("requests")

    def tenant_requests(self, tenant: str) -> str:
        """The request topic of one tenant: ``<prefix>requests.<tenant>`` (whatever ``request_tenants`` says)."""
        return self.name(f"requests.{tenant}")

    def tenant_request_topics(self) -> dict[str, str]:
        """Each of ``request_tenants``' request topics, with the tenant it stands for."""
        return {self.tenant_requests(tenant): tenant for tenant in self.request_tenants}

    @property
    def preprocessed(self) -> str:
        """The ``preprocessed`` topic."""
        return self.name("preprocessed")

    @property
    def grounded(self) -> str:
        """The ``grounded`` topic."""
        return self.name("grounded")

    @property
    def checked(self) -> str:
        """The ``checked`` topic."""
        return self.name("checked")

    @property
    def generated(self) -> str:
        """The ``generated`` topic."""
        return self.name("generated")

    @property
    def responses(self) -> str:
        """The ``responses`` topic."""
        return self.name("responses")

    @property
    def shadow_responses(self) -> str:
        """The ``responses.shadow`` topic: answers to shadow requests (replay), never read by users.

        Under the answer-topic prefix, so the stages' existing write permission on answer topics covers it;
        preprocess reserves it for shadow requests (and shadow requests for it).
        """
        return self.name("responses.shadow")

    @property
    def turns(self) -> str:
        """The ``turns`` topic."""
        return self.name("turns")

    @property
    def usage(self) -> str:
        """The ``usage`` topic: one token-accounting record per answered request (postprocess writes it)."""
        return self.name("usage")

    @property
    def cache(self) -> str:
        """The ``cache`` topic: answers the semantic cache may give again (postprocess writes, safety reads)."""
        return self.name("cache")

    @property
    def ingest(self) -> str:
        """The ``ingest`` topic: documents for the knowledge base (embedded mode: grounding writes them)."""
        return self.name("ingest")

    @property
    def ingest_progress(self) -> str:
        """The ``ingest-progress`` topic: what grounding wrote for each ingest command."""
        return self.name("ingest-progress")

    @property
    def dlq(self) -> str:
        """The ``dlq`` topic."""
        return self.name("dlq")

    def configs(self) -> dict[str, dict[str, str]]:
        """Topic configs that differ from the broker's defaults, by topic (set when llmops creates the topics).

        The cache topic is compacted: each record is the newest answer for its exact key (the key of the
        Kafka record), every safety replica rebuilds its cache by reading the topic from the beginning, and
        compaction keeps that read bounded by the number of keys instead of the number of answers ever given;
        ``delete`` too, so entries older than a day go (the cache's TTL is shorter).
        """
        return {self.cache: {"cleanup.policy": "compact,delete", "retention.ms": str(24 * 3600 * 1000)}}

    def all(self) -> list[str]:
        """Every topic the pipeline needs, in flow order (tenants' request topics beside the shared one)."""
        return [
            self.requests,
            *self.tenant_request_topics(),
            self.preprocessed,
            self.grounded,
            self.checked,
            self.generated,
            self.responses,
            self.shadow_responses,
            self.turns,
            self.usage,
            self.cache,
            self.ingest,
            self.ingest_progress,
            self.dlq,
        ]


class CoreSettings(BaseSettings):
    """Settings every process reads (``LLMOPS_*``)."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_", env_file=".env", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    data_dir: Path = Field(default_factory=default_data_dir)
    default_model: str | None = Field(default=None, description="Registry model when a request names none.")
    registry_path: Path | None = Field(default=None, description="Model registry file; the packaged one when absent.")
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", description="Event loop of the stage services: uvloop costs less per broker poll."
    )
    dev_mode: bool = Field(
        default=False, description="Development machine: known default secrets are accepted (never in production)."
    )
    full_answers: bool = Field(
        default=False,
        description=(
            "Answers on reply topics carry the whole envelope (system prompt, dropped documents, cache key): "
            "for debugging only; clients otherwise get the public view (shared.contracts.public)."
        ),
    )

    tenants_file: Path | None = Field(
        default=None,
        description="The tenant configuration (YAML, docs/tenants.md): each stage and the gateway read their part.",
    )
    tenants: dict[str, Any] | None = Field(
        default=None, description="The same as JSON (LLMOPS_TENANTS); set it or tenants_file, not both."
    )
    _tenant_config: TenantsConfig = PrivateAttr(default_factory=TenantsConfig)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _load_tenants(self) -> CoreSettings:
        """The tenant configuration, validated at start; its request-topic tenants join ``topics.request_tenants``."""
        if self.tenants_file is not None and self.tenants is not None:
            msg = "set LLMOPS_TENANTS_FILE or LLMOPS_TENANTS, not both"
            raise ValueError(msg)
        if self.tenants_file is not None:
            unified = TenantSource(
                f"LLMOPS_TENANTS_FILE ({self.tenants_file})",
                TenantsConfig.from_file(self.tenants_file).explicit(),
                deprecated=False,
            )
        else:
            unified = TenantSource("LLMOPS_TENANTS", self.tenants or {}, deprecated=False)
        # Those the unified configuration already gives a topic are left out: settings nested in others are
        # validated again, with the topics this validator set; the old variable adds only the others.
        given = TenantsConfig.parse(unified.data).request_tenants()
        topics = TenantSource(
            "LLMOPS_TOPIC_REQUEST_TENANTS",
            {"tenants": {name: {"request_topic": True} for name in self.topics.request_tenants if name not in given}},
        )
        self._tenant_config = merge_sources(unified, topics)
        request_tenants = self._tenant_config.request_tenants()
        if request_tenants != self.topics.request_tenants:
            self.topics = self.topics.model_copy(update={"request_tenants": request_tenants})
        return self

    def tenant_config(self, *legacy: TenantSource) -> TenantsConfig:
        """The tenant configuration, with a stage's old variables (``legacy``) merged in: a disagreement fails."""
        if all(source.empty for source in legacy):
            return self._tenant_config
        unified = TenantSource(self._tenants_source(), self._tenant_config.explicit(), deprecated=False)
        return merge_sources(unified, *legacy)

    def _tenants_source(self) -> str:
        return f"LLMOPS_TENANTS_FILE ({self.tenants_file})" if self.tenants_file else "LLMOPS_TENANTS"

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> CoreSettings:
        """A Kafka password that is a known default (or empty) stops the process at start, unless in dev mode."""
        kafka = self.kafka
        sasl = kafka.sasl_password if kafka.security_protocol.startswith("SASL_") else None
        refuse_default_secrets(
            {"LLMOPS_KAFKA_SASL_PASSWORD": sasl, "LLMOPS_KAFKA_SSL_KEY_PASSWORD": kafka.ssl_key_password},
            dev_mode=self.dev_mode,
        )
        return self

    @property
    def models_dir(self) -> Path:
        """Assembled GGUF files."""
        return self.data_dir / "models"


class StageSettings(BaseSettings):
    """What every stage service has; each service subclasses it with its own env prefix."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_STAGE_", env_file=".env", extra="ignore")

    core: CoreSettings = Field(default_factory=CoreSettings)
    group_id: str | None = Field(default=None, description="Consumer group; llmops-<stage> when absent.")
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=0, ge=0, le=65535, description="Health HTTP port; 0 disables it.")
    replica: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    shutdown_timeout_s: float = Field(
        default=60.0, gt=0, description="On SIGTERM, how long the message in hand may take to finish."
    )
