"""Safety settings (``LLMOPS_SAFETY_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.runtime.settings import StageSettings

__all__ = ["SafetySettings"]


class SafetySettings(StageSettings):
    """Settings of the safety service."""

    model_config = SettingsConfigDict(env_prefix="LLMOPS_SAFETY_", env_file=".env", extra="ignore")

    policy_path: Path | None = Field(default=None, description="Policy file; the packaged policy.yaml when absent.")
    embed_threads: int | None = Field(
        default=1,
        ge=1,
        description="Torch threads for MiniLM (one prompt at a time: 1 avoids spin-waiting on busy cores); "
        "unset = torch's default. Scale with replicas.",
    )
    batch_max_records: int = Field(
        default=16, ge=1, description="Most requests one poll hands the checks (one commit, publishes in parallel)."
    )
    batch_timeout_ms: int = Field(
        default=100, ge=1, description="Longest one poll waits for a first record; it returns as soon as one arrives."
    )
    context_memo_entries: int = Field(
        default=4096,
        ge=0,
        description="Retrieved chunks whose context-check findings are kept (by a hash of the text) so a chunk "
        "retrieved again is not checked again; 0 checks every chunk every time.",
    )
