"""Where the knowledge base lives (``LLMOPS_QDRANT_*``): a local folder by default, or a Qdrant server."""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.knowledge.store import KnowledgeStore
from shared.runtime.settings import secret_from

__all__ = ["KnowledgeSettings"]


class KnowledgeSettings(BaseSettings):
    """Qdrant connection and chunking settings, read by the grounding service and ``llmops ingest``."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_QDRANT_", env_file=".env", extra="ignore")

    url: str | None = Field(
        default=None, description="Qdrant server URL (https:// for TLS); local mode (a folder) when absent."
    )
    api_key: SecretStr | None = Field(default=None, description="Qdrant server API key; or api_key_file. Never logged.")
    api_key_file: Path | None = Field(
        default=None, description="File holding the Qdrant API key (a mounted secret); read at start."
    )
    ca_file: Path | None = Field(
        default=None, description="CA bundle for the Qdrant server's certificate (https URLs); system CAs when absent."
    )
    path: Path | None = Field(default=None, description="Local-mode folder; <data dir>/qdrant when absent.")
    collection: str = Field(default="knowledge", description="Collection name (local mode: one per tenant).")
    timeout_s: float = Field(default=2.0, gt=0, description="Longest a retrieval may take before it is skipped.")
    chunk_tokens: int = Field(default=128, ge=32, le=256, description="Largest chunk, in MiniLM word pieces.")
    chunk_overlap: int = Field(default=24, ge=0, description="Tokens shared by consecutive chunks of a section.")

    @model_validator(mode="after")
    def _check_server(self) -> KnowledgeSettings:
        """Read the key file; refuse TLS or key settings that would be silently unused."""
        self.api_key = secret_from(self.api_key, self.api_key_file, "api_key")
        if self.url is None and (self.api_key is not None or self.ca_file is not None):
            msg = "api_key and ca_file are for a Qdrant server: set url too (local mode has neither)"
            raise ValueError(msg)
        if self.ca_file is not None and not self.https:
            msg = f"ca_file needs an https:// url, not {self.url!r}"
            raise ValueError(msg)
        return self

    @property
    def https(self) -> bool:
        """Whether the server is reached over TLS (its URL is https://)."""
        return self.url is not None and self.url.lower().startswith("https://")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context trusting ``ca_file`` (None: qdrant-client's default, the system CAs)."""
        if self.ca_file is None:
            return None
        try:
            return ssl.create_default_context(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as exc:
            msg = f"LLMOPS_QDRANT_CA_FILE {self.ca_file} cannot be read as a CA bundle: {exc}"
            raise ValueError(msg) from None

    def store(self, data_dir: Path, *, timeout_s: float | None = None) -> KnowledgeStore:
        """The knowledge store these settings point at (not opened yet): the server's, else the local folder.

        Example:
            >>> KnowledgeSettings(url="https://qdrant:6333", api_key_file=Path("/run/secrets/qdrant")).store(data_dir)
            KnowledgeStore(url='https://qdrant:6333', ...)

        """
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        if self.url is not None:
            return KnowledgeStore(
                url=self.url,
                api_key=self.api_key.get_secret_value() if self.api_key else None,
                verify=self.ssl_context(),
                collection=self.collection,
                timeout_s=timeout,
            )
        return KnowledgeStore(path=self.local_path(data_dir), collection=self.collection, timeout_s=timeout)

    @property
    def local(self) -> bool:
        """Whether this is local mode, where only one process may open the store."""
        return self.url is None

    def local_path(self, data_dir: Path) -> Path:
        """The local-mode folder."""
        return (self.path or data_dir / "qdrant").expanduser()
