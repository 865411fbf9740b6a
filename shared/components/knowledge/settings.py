"""Where the knowledge base lives (``LLMOPS_QDRANT_*``): a local folder by default, or a Qdrant server."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KnowledgeSettings"]


class KnowledgeSettings(BaseSettings):
    """Qdrant connection and chunking settings, read by the grounding service and ``llmops ingest``."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_QDRANT_", env_file=".env", extra="ignore")

    url: str | None = Field(default=None, description="Qdrant server URL; local mode (a folder) when absent.")
    api_key: SecretStr | None = Field(default=None, description="Qdrant server API key.")
    path: Path | None = Field(default=None, description="Local-mode folder; <data dir>/qdrant when absent.")
    collection: str = Field(default="knowledge", description="Collection name (local mode: one per tenant).")
    timeout_s: float = Field(default=2.0, gt=0, description="Longest a retrieval may take before it is skipped.")
    chunk_tokens: int = Field(default=128, ge=32, le=256, description="Largest chunk, in MiniLM word pieces.")
    chunk_overlap: int = Field(default=24, ge=0, description="Tokens shared by consecutive chunks of a section.")

    @property
    def local(self) -> bool:
        """Whether this is local mode, where only one process may open the store."""
        return self.url is None

    def local_path(self, data_dir: Path) -> Path:
        """The local-mode folder."""
        return (self.path or data_dir / "qdrant").expanduser()
